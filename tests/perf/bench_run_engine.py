"""Benchmark: the run queue on Redis with real worker processes, on PostgreSQL.

Not a pass/fail test. Prints, for 1 and 2 worker processes (4 threads each):

* throughput: local-provider text runs per second (queued first, then the workers start;
  measured from the first run's start to the last run's end) and, through the same queue in
  the same run, no-op probe tasks per second; with their ratio;
* enqueue -> start latency p50/p99: runs started one after another while the workers are idle
  (``started_at - created_at``) and no-op probes sent one after another (pickup - send), with
  their ratios.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m pytest tests/perf/bench_run_engine.py -s -p no:cacheprovider

Needs a Redis at RUN_TEST_REDIS_URL (default redis://127.0.0.1:6379/5; a queue namespace of its
own, deleted afterwards).
"""

from __future__ import annotations

import statistics
import time

from sqlmodel import Session, col, select

from models import Generation
from services import run_engine
from tests.conftest import requires_postgres
from tests.db.test_run_engine_pg import (  # noqa: F401  (fixtures)
    _heartbeats,
    _queue_drained,
    _statuses,
    _wait_for,
    _waiting,
    queue,
)
from tests.unit.test_generations import World

pytestmark = [requires_postgres]

SIZES = {"small": {"runs": 40, "latency": 15}, "full": {"runs": 300, "latency": 60}}
THREADS = 4
# The broker's production defaults: the Redis tests shorten the heartbeat to see a killed
# worker's messages come back quickly, which also hands a busy worker's prefetched messages
# to another (harmless for runs, which are claimed once, but it would count probes twice).
BROKER_DEFAULTS = {"RUN_REDIS_HEARTBEAT_MS": "30000", "RUN_REDIS_MAINTENANCE_CHANCE": "1000"}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def _stop(processes) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=60)


def _start_workers(start_worker, count: int):
    processes = [start_worker(threads=THREADS, **BROKER_DEFAULTS) for _ in range(count)]
    _wait_for(lambda: _heartbeats(start_worker) >= count, "workers to start")
    return processes


def _runs_throughput(engine, world: World, start_worker, count: int, workers: int) -> float:
    ids = [world.start(prompt=f"Throughput {number}").id for number in range(count)]
    processes = _start_workers(start_worker, workers)
    _wait_for(lambda: _statuses(engine, ids) == {"succeeded": count}, "the runs")
    with Session(engine) as session:
        rows = session.exec(
            select(Generation.started_at, Generation.finished_at).where(col(Generation.id).in_(ids))
        ).all()
    _stop(processes)
    span = (max(f for _, f in rows) - min(s for s, _ in rows)).total_seconds()
    return count / span


def _probe_throughput(start_worker, count: int, workers: int) -> float:
    key = f"{start_worker.namespace}:bench:probe:{workers}"
    probe = run_engine.queue_probe_actor()
    for _ in range(count):
        probe.send(key, time.time())
    processes = _start_workers(start_worker, workers)
    _wait_for(lambda: start_worker.redis.llen(key) >= count, "the probes")
    _stop(processes)
    picked = [float(item.split()[1]) for item in start_worker.redis.lrange(key, 0, -1)]
    return count / max(max(picked) - min(picked), 1e-6)


def _latencies(engine, world: World, start_worker, count: int) -> tuple[list, list]:
    processes = _start_workers(start_worker, 1)
    run_latency = []
    for number in range(count):
        run = world.start(prompt=f"Latency {number}")
        _wait_for(lambda run_id=run.id: _statuses(engine, [run_id]) == {"succeeded": 1}, "run")
        with Session(engine) as reader:
            row = reader.get(Generation, run.id)
            run_latency.append((row.started_at - row.created_at).total_seconds())
    key = f"{start_worker.namespace}:bench:latency"
    probe = run_engine.queue_probe_actor()
    for number in range(count):
        probe.send(key, time.time())
        _wait_for(lambda n=number: start_worker.redis.llen(key) > n, "probe")
    probe_latency = [float(item.split()[0]) for item in start_worker.redis.lrange(key, 0, -1)]
    _stop(processes)
    return run_latency, probe_latency


def test_bench_run_engine(pg_engine, queue, bench_size, monkeypatch):  # noqa: F811 - fixture
    for name, value in BROKER_DEFAULTS.items():
        monkeypatch.setenv(name, value)
    size = SIZES[bench_size]
    lines = [f"run queue benchmark ({bench_size}: {size['runs']} runs, {THREADS} threads/worker)"]
    session = Session(pg_engine, expire_on_commit=False)
    world = World(session)
    for workers in (1, 2):
        runs = _runs_throughput(pg_engine, world, queue, size["runs"], workers)
        _wait_for(lambda: _waiting(queue) == 0, "an empty queue")
        probes = _probe_throughput(queue, size["runs"], workers)
        _wait_for(lambda: _waiting(queue) == 0, "an empty queue")
        lines.append(
            f"  {workers} worker(s): {runs:8.1f} text runs/s, {probes:8.1f} no-op tasks/s, "
            f"ratio {runs / probes:.3f}"
        )
    run_latency, probe_latency = _latencies(pg_engine, world, queue, size["latency"])
    session.close()
    for label, share in (("p50", 0.5), ("p99", 0.99)):
        run_value = _percentile(run_latency, share)
        probe_value = _percentile(probe_latency, share)
        lines.append(
            f"  enqueue->start {label}: run {run_value * 1000:7.1f} ms, no-op "
            f"{probe_value * 1000:7.1f} ms, ratio {run_value / max(probe_value, 1e-6):.2f}"
        )
    lines.append(f"  (mean run latency {statistics.mean(run_latency) * 1000:.1f} ms)")
    if not _queue_drained(queue):
        lines.append("  (messages of stopped workers were still unacknowledged at the end)")
    print("\n" + "\n".join(lines))
