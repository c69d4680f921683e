"""Benchmark: Studio events end to end over the websocket, as ratios to a trivial event.

Not a pass/fail test; it only prints. The real app (`reflex run --env prod`, the production
build) serves a signed-in person on Growth with credits; a socket.io client speaks to it as
the browser does (`tests/perf/live_client.py`), and every figure is a round trip: emit, then
the first delta that shows the event's effect.

  * trivial     StudioState.set_upgrade_open, alternately True and False: no database, a
                one-var delta. The baseline: Reflex's own cost of one event (state lock,
                handler, delta, websocket both ways);
  * page open   a new tab: connect + hydrate (the compiled state hashes are sent as the
                browser does) + the page's on_load (StudioState.load) until is_hydrated;
  * bare open   the same for an address with no page (the 404 page has no on_load): Reflex's
                own cost of opening any page of this app, connect and hydrate of the whole
                state tree. Not a goal; the floor under "page open", printed so the part
                Studio's load adds can be read off;
  * pick model  StudioState.pick_model, alternately Studio Local Image and Studio Local Text,
                until the delta with the new selection;
  * run         StudioState.run with the prompt in the form, until the delta saying the run is
                queued (not until it finishes; the next run waits for that).

The in-process view of the same handlers (service work only, no websocket) is
`bench_studio_events.py`.

    python -m tests.perf.bench_studio_websocket [--size small|full]

starts the app itself (one backend worker, state in memory, as deployed without Redis) on its
own build directory. Under pytest, ``test_bench_studio_websocket`` uses the live app the
browser tests share (skipped like them without Chromium), at full size when the benchmarks
were asked for on their own and small inside the whole suite (see ``tests/perf/conftest.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from tests.live_app import AppServer
from tests.perf import live_client as lc

# The product's goals: a round trip as a multiple of the trivial event's (medians).
GOALS = {"page open": 20.0, "pick model": 2.0, "run": 5.0}
ROLES = {"trivial": "(baseline)", "bare open": "(floor of any page open: no on_load)"}
SIZES = {
    "small": {"rounds": 2, "per_round": 10, "runs": 2, "opens": 1},
    "full": {"rounds": 10, "per_round": 30, "runs": 10, "opens": 3},
}
PICKS = ("local-image", "local-text")
QUEUED = lc.changed(lc.STUDIO_STATE, "running", True)
REFUSED = lc.changed(lc.STUDIO_STATE, "error")
IDLE = lc.changed(lc.STUDIO_STATE, "running", False)
NO_PAGE = "/no-such-page"  # served by the 404 page, which has no on_load


def _ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _one_run(tab: lc.Tab, index: int, samples: dict, notes: list[str]) -> None:
    """One Run (Studio Local Text) and its answer; then wait until it has finished, so the
    next one is not refused as "already in progress". A refusal or a run that does not end
    is noted and ends the run measurements, never the benchmark."""
    if tab.var(lc.STUDIO_STATE, "selected_key") != "local-text":
        await tab.send(
            lc.studio_event("pick_model"),
            {"key": "local-text"},
            lc.changed(lc.STUDIO_STATE, "selected_key", "local-text"),
        )
    seconds = await tab.send(
        lc.studio_event("run"),
        {"form_data": {"prompt": f"Benchmark run {index}"}},
        lambda delta: QUEUED(delta) or REFUSED(delta),
    )
    if not tab.var(lc.STUDIO_STATE, "running"):
        notes.append(f"run refused: {tab.var(lc.STUDIO_STATE, 'error')}")
        return
    samples["run"].append(seconds)
    try:
        await tab.wait_for(IDLE, timeout=120)
    except TimeoutError:
        notes.append("a run did not finish within 120 s; no further runs measured")


async def _measure(server: AppServer, size: str) -> tuple[dict[str, list[float]], list[str]]:
    shape = SIZES[size]
    ((slug, cookie),) = lc.signed_in_world(server, 1)
    path = f"/org/{slug}/studio"
    hashes = lc.initial_state_hashes(server.base_url)
    samples: dict[str, list[float]] = {
        "trivial": [],
        "page open": [],
        "bare open": [],
        "pick model": [],
        "run": [],
    }
    notes: list[str] = []
    tab = lc.Tab(server.base_url, cookie, path, hashes)
    await tab.open()  # warm up: first imports, caches, the identity of this cookie
    try:
        for round_index in range(shape["rounds"]):
            for _ in range(shape["per_round"]):
                toggle = not tab.var(lc.STUDIO_STATE, "upgrade_open")
                samples["trivial"].append(
                    await tab.send(
                        lc.studio_event("set_upgrade_open"),
                        {"value": toggle},
                        lc.changed(lc.STUDIO_STATE, "upgrade_open", toggle),
                    )
                )
                key = PICKS[0] if tab.var(lc.STUDIO_STATE, "selected_key") != PICKS[0] else PICKS[1]
                samples["pick model"].append(
                    await tab.send(
                        lc.studio_event("pick_model"),
                        {"key": key},
                        lc.changed(lc.STUDIO_STATE, "selected_key", key),
                    )
                )
            for _ in range(shape["opens"]):
                for name, address in (("page open", path), ("bare open", NO_PAGE)):
                    fresh = lc.Tab(server.base_url, cookie, address, hashes)
                    try:
                        samples[name].append(await fresh.open())
                    finally:
                        await fresh.close()
            if round_index < shape["runs"] and not notes:
                await _one_run(tab, round_index, samples, notes)
    finally:
        await tab.close()
    return samples, notes


def report(
    samples: dict[str, list[float]], notes: list[str], *, workers: int, hashes: bool
) -> None:
    baseline = statistics.median(samples["trivial"])
    print(
        f"\nStudio events end to end over the websocket ({workers} backend worker(s); "
        f"ratios of medians to the trivial event, set_upgrade_open; page open "
        f"{'sends the compiled state hashes' if hashes else 'gets the full snapshot'}):"
    )
    for name, values in samples.items():
        if not values:
            continue
        p50 = statistics.median(values)
        goal = f"   goal <= {GOALS[name]:.0f}x" if name in GOALS else f"   {ROLES[name]}"
        print(
            f"  {name:<11} n={len(values):<4} p50 {p50 * 1000:8.2f} ms  "
            f"p90 {_ms(values, 0.9):8.2f} ms   x{p50 / baseline:7.1f}{goal}"
        )
    for note in notes:
        print(f"  note: {note}")
    print(f"  machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def run(server: AppServer, size: str) -> dict[str, list[float]]:
    samples, notes = lc.run_async(lambda: _measure(server, size))
    report(
        samples,
        notes,
        workers=len(lc.backend_pids(server.process.pid)) if server.process else 1,
        hashes=lc.initial_state_hashes(server.base_url) is not None,
    )
    return samples


def test_bench_studio_websocket(app_server, bench_size):
    run(app_server, bench_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp, lc.bench_app(Path(tmp)) as app:
        run(app, args.size)


if __name__ == "__main__":
    main()
