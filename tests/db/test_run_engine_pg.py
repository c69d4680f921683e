"""Runs on the real Redis queue with real worker processes (`python -m jobs worker`) on PostgreSQL.

A task sent twice runs once; two workers share 200 queued runs and each runs exactly once with
the balance equal to the ledger; a worker killed with SIGKILL mid-run (a slow loopback provider
streaming text) has its run failed with ``worker_lost`` and its credits released exactly once,
and the redelivered message does nothing.

Needs TEST_DATABASE_URL and a Redis at RUN_TEST_REDIS_URL (default redis://127.0.0.1:6379/5).
Each test uses a queue namespace of its own (RUN_REDIS_NAMESPACE), so test runs at the same
time on one Redis never take each other's messages; its keys are deleted afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from core.settings import reset_settings_cache
from models import AIModel, CreditAccount, CreditLedgerEntry, Generation, UsageEvent
from services import run_engine
from tests.conftest import requires_postgres
from tests.unit.test_generations import World

pytestmark = [requires_postgres, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("RUN_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
LEASE_SECONDS = 6
SAFETY_SECONDS = 180  # a bound so a regression fails instead of hanging; never asserted on


class SlowEndpoint(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint streaming one word every 0.3 s until released."""

    protocol_version = "HTTP/1.1"
    release: threading.Event

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802 - http.server API
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for number in range(400):
                chunk = {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "m",
                    "choices": [{"index": 0, "delta": {"content": f"word{number} "}}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                if self.release.wait(0.3):
                    break
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


@pytest.fixture
def slow_endpoint():
    release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (SlowEndpoint,), {"release": release}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def queue(pg_engine, tmp_path, monkeypatch):
    """RUN_QUEUE=redis in this process (it enqueues) and a way to start worker processes."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    namespace = f"runs-test-{uuid.uuid4().hex[:12]}"
    env = {
        "RUN_REDIS_NAMESPACE": namespace,
        "RUN_QUEUE": "redis",
        "REDIS_URL": REDIS_URL,
        "RUN_LEASE_SECONDS": str(LEASE_SECONDS),
        "RUN_REDIS_HEARTBEAT_MS": "3000",
        "RUN_REDIS_MAINTENANCE_CHANCE": "1000000",
        "CONCURRENT_RUNS_PER_USER": "1000",
        "CONCURRENT_RUNS_PER_ORG": "1000",
        "STORAGE_LOCAL_DIR": str(tmp_path / "assets"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STORAGE_BUCKET", raising=False)
    reset_settings_cache()
    run_engine._actor = None  # noqa: SLF001 - this test's broker
    workers: list[subprocess.Popen] = []

    def start_worker(threads: int = 4, **extra: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobs", "worker", "--threads", str(threads)],
            cwd=ROOT,
            env={
                **os.environ,
                **env,
                **extra,
                "DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
            },
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"worker-{len(workers)}.log").open("w"),
        )
        workers.append(process)
        return process

    start_worker.redis = client
    start_worker.namespace = namespace
    yield start_worker
    for process in workers:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    run_engine._actor = None  # noqa: SLF001
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)


def _wait_for(condition, what: str) -> None:
    give_up = time.monotonic() + SAFETY_SECONDS
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def _heartbeats(queue) -> int:
    """Workers that were heard from in the last two seconds."""
    recent_ms = (time.time() - 2) * 1000
    return queue.redis.zcount(f"{queue.namespace}:__heartbeats__", recent_ms, "+inf")


def _waiting(queue) -> int:
    return queue.redis.llen(f"{queue.namespace}:runs")


def _queue_drained(queue) -> bool:
    """No message waiting, delayed or held unacknowledged by any worker."""
    if _waiting(queue) or queue.redis.llen(f"{queue.namespace}:runs.DQ"):
        return False
    return not any(
        queue.redis.scard(key) for key in queue.redis.scan_iter(f"{queue.namespace}:__acks__.*")
    )


def _statuses(engine, ids: list[int]) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(
            select(Generation.status, func.count())
            .where(col(Generation.id).in_(ids))
            .group_by(Generation.status)
        ).all()
    return dict(rows)


def _kinds_per_run(engine, ids: list[int]) -> dict[int, list[str]]:
    with Session(engine) as session:
        entries = session.exec(
            select(CreditLedgerEntry.generation_id, CreditLedgerEntry.kind)
            .where(col(CreditLedgerEntry.generation_id).in_(ids))
            .order_by(col(CreditLedgerEntry.id))
        ).all()
    kinds: dict[int, list[str]] = {run_id: [] for run_id in ids}
    for run_id, kind in entries:
        kinds[run_id].append(kind)
    return kinds


def _balance_and_ledger(engine, org_id: int) -> tuple[int, int]:
    with Session(engine) as session:
        balance = session.exec(
            select(CreditAccount.balance_millicredits).where(CreditAccount.org_id == org_id)
        ).one()
        total = session.exec(
            select(func.coalesce(func.sum(CreditLedgerEntry.amount_millicredits), 0)).where(
                CreditLedgerEntry.org_id == org_id
            )
        ).one()
    return balance, int(total)


def _start_runs(engine, count: int, model_key: str = "local-text") -> tuple[World, list[int]]:
    with Session(engine, expire_on_commit=False) as session:
        world = World(session)
        ids = []
        for number in range(count):
            ids.append(world.start(prompt=f"Run {number}", model_key=model_key).id)
    return world, ids


def test_a_task_sent_twice_runs_once(pg_engine, queue):
    world, (run_id,) = _start_runs(pg_engine, 1)
    run_engine.redis_actor().send(run_id)  # the post-commit send, and one more
    assert _waiting(queue) == 2

    queue()
    queue()
    _wait_for(lambda: _statuses(pg_engine, [run_id]) == {"succeeded": 1}, "the run")
    _wait_for(lambda: _queue_drained(queue), "both messages handled")

    assert _kinds_per_run(pg_engine, [run_id]) == {run_id: ["hold", "settle"]}
    with Session(pg_engine) as session:
        assert len(session.exec(select(UsageEvent)).all()) == 1
    balance, ledger_sum = _balance_and_ledger(pg_engine, world.org.id)
    assert balance == ledger_sum


def test_two_workers_run_200_queued_runs_each_exactly_once(pg_engine, queue):
    world, ids = _start_runs(pg_engine, 200)
    assert _waiting(queue) == 200

    queue()
    queue()
    _wait_for(lambda: _statuses(pg_engine, ids) == {"succeeded": 200}, "200 runs")
    _wait_for(lambda: _queue_drained(queue), "every message acknowledged")

    kinds = _kinds_per_run(pg_engine, ids)
    assert all(entries == ["hold", "settle"] for entries in kinds.values())
    with Session(pg_engine) as session:
        usage = session.exec(
            select(func.count())
            .select_from(UsageEvent)
            .where(col(UsageEvent.generation_id).in_(ids))
        ).one()
        workers = set(
            session.exec(select(Generation.worker_id).where(col(Generation.id).in_(ids))).all()
        )
    assert usage == 200
    assert len(workers) == 2, workers  # both worker processes took runs
    balance, ledger_sum = _balance_and_ledger(pg_engine, world.org.id)
    assert balance == ledger_sum


def test_a_worker_killed_mid_run_has_its_run_failed_and_refunded_once(
    pg_engine, queue, slow_endpoint, monkeypatch
):
    monkeypatch.setenv("OPENAI_BASE_URL", slow_endpoint)
    reset_settings_cache()
    with Session(pg_engine) as session:
        model = session.exec(select(AIModel).where(AIModel.key == "hosted-text")).one()
        model.provider_model_id = "slow"
        session.add(model)
        session.commit()
    world, (run_id,) = _start_runs(pg_engine, 1, model_key="hosted-text")
    worker = queue(threads=2, OPENAI_BASE_URL=slow_endpoint)

    def streaming() -> bool:
        with Session(pg_engine) as session:
            row = session.get(Generation, run_id)
            return row.status == "running" and bool(row.output_text)

    _wait_for(streaming, "the run to stream its first words")
    with Session(pg_engine) as session:
        partial = session.get(Generation, run_id).output_text
    assert partial.startswith("word0 ")

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    killed_at = time.monotonic()

    def recovered() -> bool:
        run_engine.runs_recover()  # what the scheduler runs every 20 seconds
        return _statuses(pg_engine, [run_id]) == {"failed": 1}

    _wait_for(recovered, "the lost run to be failed")
    print(f"\nrun failed {time.monotonic() - killed_at:.1f} s after its worker was killed")
    with Session(pg_engine) as session:
        row = session.get(Generation, run_id)
        assert row.failure_code == "worker_lost"
        assert row.failure_reason == run_engine.WORKER_LOST_REASON

    # Another worker gets the dead worker's unacknowledged message and does nothing with it.
    queue(threads=2, OPENAI_BASE_URL=slow_endpoint)
    _wait_for(lambda: _queue_drained(queue), "the redelivered message")
    run_engine.runs_recover()

    assert _kinds_per_run(pg_engine, [run_id]) == {run_id: ["hold", "release"]}
    assert _statuses(pg_engine, [run_id]) == {"failed": 1}
    with Session(pg_engine) as session:
        usage = session.exec(select(UsageEvent).where(UsageEvent.generation_id == run_id)).one()
    assert (usage.outcome, usage.millicredits) == ("failed", 0)
    balance, ledger_sum = _balance_and_ledger(pg_engine, world.org.id)
    assert balance == ledger_sum


def test_a_run_outlives_the_web_process_that_started_it(pg_engine, queue):
    """The process that started a run exits right after (a web restart): a worker finishes it."""
    with Session(pg_engine, expire_on_commit=False) as session:
        world = World(session)
        user_id, org_id, project_id = world.editor.id, world.org.id, world.spring.id
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sqlmodel import Session\n"
            "from core.db import get_engine\n"
            "from models import User\n"
            "from services.generations import generation_start\n"
            "with Session(get_engine()) as s:\n"
            f"    user = s.get(User, {user_id})\n"
            f"    run = generation_start(session=s, user=user, org_id={org_id},\n"
            f"        model_key='local-text', prompt='Before the restart', project_id={project_id})\n"
            "    s.commit()\n"
            "    print(run.id)\n",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": pg_engine.url.render_as_string(hide_password=False)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    run_id = int(started.stdout.strip())
    assert _statuses(pg_engine, [run_id]) == {"queued": 1}  # its process is gone

    queue()
    _wait_for(lambda: _statuses(pg_engine, [run_id]) == {"succeeded": 1}, "the run")
    assert _kinds_per_run(pg_engine, [run_id]) == {run_id: ["hold", "settle"]}
