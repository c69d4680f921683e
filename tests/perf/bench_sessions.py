"""Benchmark: one backend worker with many open Studio tabs and a steady stream of events.

Not a pass/fail test; it only prints. The real app (`reflex run --env prod`) serves N
signed-in people (one organization on Growth, the owner and editors), each with a Studio tab
open over the websocket (`tests/perf/live_client.py`: connect, hydrate, on_load). Then events
arrive at a fixed total rate, each on a tab picked at random among those not waiting for an
answer (a person does one thing at a time), for a fixed time:

  * 60%  StudioState.set_prompt    (typing; the estimate follows)
  * 25%  StudioState.pick_model    (Studio Local Image / Local Text, from memory)
  * 15%  StudioState.set_upgrade_open (a UI toggle, no database)

Latency is emit -> the delta showing the change. The baseline, measured first in the same
run, is the same mix from one tab, one event at a time (no load): its median is what an event
costs an idle backend, and the loaded figures are printed as multiples of it next to the
goals (p99 <= 50 ms at 190 events/s; <= 1 MiB per session). Memory per session is the growth
of the backend workers' VmRSS from before the first tab connects to after every tab is
hydrated, divided by N.

    python -m tests.perf.bench_sessions [--size small|full]

starts the app itself with one backend worker and state in memory (as deployed without
Redis). Under pytest, ``test_bench_sessions`` uses the live app the browser tests share
(skipped like them without Chromium; with REDIS_URL set it has several workers and keeps state
in Redis, which the output says), small inside the whole suite and full when the benchmarks
were asked for on their own (``tests/perf/conftest.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from tests.live_app import AppServer
from tests.perf import live_client as lc

GOAL_P99_MS = 50.0
GOAL_MIB_PER_SESSION = 1.0
SIZES = {
    "small": {"sessions": 40, "rate": 38.0, "seconds": 5.0, "baseline": 60, "idle": 3.0},
    "full": {"sessions": 200, "rate": 190.0, "seconds": 30.0, "baseline": 300, "idle": 9.0},
}
MIX = (("set_prompt", 0.60), ("pick_model", 0.25), ("set_upgrade_open", 0.15))
PICKS = ("local-image", "local-text")
OPEN_AT_ONCE = 8  # tabs hydrating at the same time while the sessions are set up


class Person:
    """One tab and what its next event of each kind changes."""

    def __init__(self, tab: lc.Tab):
        self.tab = tab
        self.typed = 0
        self.busy = False

    async def act(self, kind: str) -> float:
        if kind == "set_prompt":
            self.typed += 1
            text = "A launch post for the spring range, take " + str(self.typed)
            until = lc.changed(lc.STUDIO_STATE, "prompt", text)
            return await self.tab.send(lc.studio_event(kind), {"value": text}, until)
        if kind == "pick_model":
            current = self.tab.var(lc.STUDIO_STATE, "selected_key")
            key = PICKS[0] if current != PICKS[0] else PICKS[1]
            until = lc.changed(lc.STUDIO_STATE, "selected_key", key)
            return await self.tab.send(lc.studio_event(kind), {"key": key}, until)
        value = not self.tab.var(lc.STUDIO_STATE, "upgrade_open")
        until = lc.changed(lc.STUDIO_STATE, "upgrade_open", value)
        return await self.tab.send(lc.studio_event(kind), {"value": value}, until)


def _kind(rng: random.Random) -> str:
    roll, total = rng.random(), 0.0
    for kind, share in MIX:
        total += share
        if roll < total:
            return kind
    return MIX[-1][0]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _open_all(server: AppServer, signed_in: list[tuple[str, str]], hashes) -> list[Person]:
    gate = asyncio.Semaphore(OPEN_AT_ONCE)

    async def open_one(slug: str, cookie: str) -> Person:
        async with gate:
            tab = lc.Tab(server.base_url, cookie, f"/org/{slug}/studio", hashes)
            await tab.open(timeout=120)
            return Person(tab)

    return list(await asyncio.gather(*(open_one(*person) for person in signed_in)))


async def _steady(people: list[Person], rate: float, seconds: float, rng: random.Random) -> dict:
    """Events at `rate` per second for `seconds`, each on a random idle tab."""
    latencies: dict[str, list[float]] = {kind: [] for kind, _ in MIX}
    errors: list[str] = []
    skipped = 0
    pending: set[asyncio.Task] = set()

    async def one(person: Person, kind: str) -> None:
        try:
            latencies[kind].append(await person.act(kind))
        except Exception as error:  # noqa: BLE001 - counted and shown, the run goes on
            errors.append(f"{kind}: {type(error).__name__} {error}")
        finally:
            person.busy = False

    cpu_before = time.process_time()
    started = time.perf_counter()
    sent = 0
    while (now := time.perf_counter() - started) < seconds:
        due = int(now * rate) + 1 - sent
        for _ in range(max(due, 0)):
            idle = [p for p in rng.sample(people, min(len(people), 8)) if not p.busy]
            if not idle:
                skipped += 1
                sent += 1
                continue
            person = idle[0]
            person.busy = True
            task = asyncio.create_task(one(person, _kind(rng)))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(max(0.0, (sent / rate) - (time.perf_counter() - started)))
    elapsed = time.perf_counter() - started
    if pending:
        await asyncio.wait(pending, timeout=60)
    return {
        "latencies": latencies,
        "sent": sent - skipped,
        "skipped": skipped,
        "errors": errors,
        "rate": (sent - skipped) / elapsed,
        "client_cpu": (time.process_time() - cpu_before) / elapsed,
    }


async def _baseline(person: Person, count: int, rng: random.Random) -> list[float]:
    samples = []
    for _ in range(count):
        samples.append(await person.act(_kind(rng)))
    return samples


async def _measure(server: AppServer, size: str) -> dict:
    shape = SIZES[size]
    rng = random.Random(7)
    signed_in = lc.signed_in_world(server, shape["sessions"] + 1)
    hashes = lc.initial_state_hashes(server.base_url)
    pid = server.process.pid
    # Warm up on one extra tab (imports, caches), then the one-tab baseline on it.
    probe = (await _open_all(server, signed_in[-1:], hashes))[0]
    await _baseline(probe, 20, rng)
    baseline = await _baseline(probe, shape["baseline"], rng)
    await probe.tab.close()
    await asyncio.sleep(1)
    rss_before = lc.rss_bytes(pid)
    opened = time.perf_counter()
    people = await _open_all(server, signed_in[:-1], hashes)
    open_seconds = time.perf_counter() - opened
    await asyncio.sleep(1)
    rss_after = lc.rss_bytes(pid)
    try:
        # The open tabs alone, no events: what they cost the backend (their follow steps).
        cpu, started = lc.cpu_seconds(pid), time.perf_counter()
        await asyncio.sleep(shape["idle"])
        idle_cpu = (lc.cpu_seconds(pid) - cpu) / (time.perf_counter() - started)
        cpu, started = lc.cpu_seconds(pid), time.perf_counter()
        ran, waited = lc.scheduler_seconds(pid)
        steady = await _steady(people, shape["rate"], shape["seconds"], rng)
        elapsed = time.perf_counter() - started
        busy_cpu = (lc.cpu_seconds(pid) - cpu) / elapsed
        ran_after, waited_after = lc.scheduler_seconds(pid)
        loop_ran, loop_waited = (ran_after - ran) / elapsed, (waited_after - waited) / elapsed
        rss_end = lc.rss_bytes(pid)
    finally:
        await asyncio.gather(*(p.tab.close() for p in people))
    return {
        "shape": shape,
        "workers": len(lc.backend_pids(pid)),
        "baseline": baseline,
        "open_seconds": open_seconds,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "rss_end": rss_end,
        "idle_cpu": idle_cpu,
        "busy_cpu": busy_cpu,
        "loop_ran": loop_ran,
        "loop_waited": loop_waited,
        "load": os.getloadavg()[0],
        **steady,
    }


def report(result: dict) -> None:
    shape = result["shape"]
    sessions = shape["sessions"]
    base = statistics.median(result["baseline"])
    every = [s for values in result["latencies"].values() for s in values]
    per_session = (result["rss_after"] - result["rss_before"]) / sessions
    print(
        f"\n{sessions} Studio tabs on {result['workers']} backend worker(s), "
        f"{result['rate']:.0f} events/s for {shape['seconds']:.0f} s "
        f"({result['sent']} events, {result['skipped']} skipped: no idle tab among 8 drawn; "
        f"the client used {result['client_cpu'] * 100:.0f}% of a core):"
    )
    print(
        f"  baseline: the same mix from 1 tab, one at a time: p50 {base * 1000:.2f} ms, "
        f"p99 {_pct(result['baseline'], 0.99):.2f} ms"
    )
    if every:
        p50, p99 = statistics.median(every) * 1000, _pct(every, 0.99)
        print(
            f"  all events  p50 {p50:7.2f} ms (x{p50 / 1000 / base:5.1f})   p99 {p99:7.2f} ms "
            f"(x{p99 / 1000 / base:5.1f})   max {max(every) * 1000:7.1f} ms   goal p99 <= "
            f"{GOAL_P99_MS:.0f} ms at 190 events/s"
        )
    for kind, values in result["latencies"].items():
        if values:
            print(
                f"  {kind:<16} n={len(values):<5} p50 {statistics.median(values) * 1000:7.2f} ms"
                f"   p99 {_pct(values, 0.99):7.2f} ms"
            )
    print(
        f"  memory: backend RSS {result['rss_before'] / 2**20:.0f} MiB before, "
        f"{result['rss_after'] / 2**20:.0f} MiB with {sessions} tabs hydrated "
        f"({result['open_seconds']:.1f} s to open them, {OPEN_AT_ONCE} at a time), "
        f"{result['rss_end'] / 2**20:.0f} MiB after the events: "
        f"{per_session / 1024:.0f} KiB per session (goal <= {GOAL_MIB_PER_SESSION:.0f} MiB)"
    )
    per_event = result["busy_cpu"] / result["rate"] * 1000 if result["rate"] else 0.0
    print(
        f"  backend CPU: {result['idle_cpu'] * 100:.0f}% of a core with the {sessions} tabs open "
        f"and no events (their follow steps), {result['busy_cpu'] * 100:.0f}% during the "
        f"events ({per_event:.1f} ms per event, follow steps included)"
    )
    print(
        f"  the workers' event loops ran {result['loop_ran'] * 100:.0f}% of the time and were "
        f"ready but waiting for a CPU {result['loop_waited'] * 100:.0f}% of it"
        f"{' (summed over the workers)' if result['workers'] > 1 else ''} (machine load "
        f"average {result['load']:.1f} on {os.cpu_count()} cores): a tail while they wait is "
        "the machine's, not the app's"
    )
    if result["errors"]:
        print(f"  {len(result['errors'])} events got no answer, e.g. {result['errors'][0]}")


def run(server: AppServer, size: str) -> dict:
    result = lc.run_async(lambda: _measure(server, size))
    report(result)
    return result


def test_bench_sessions(app_server, bench_size):
    run(app_server, bench_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-sessions-") as tmp,
        lc.bench_app(Path(tmp)) as app,
    ):
        run(app, args.size)


if __name__ == "__main__":
    main()
