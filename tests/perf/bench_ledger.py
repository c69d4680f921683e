"""Benchmark: credit hold+settle throughput on PostgreSQL, as a ratio to a plain UPDATE loop.

Not a pass/fail test. Two shapes, each with a few threads:
  * hot:    every thread works on one organization (all wait on one account row lock);
  * spread: each operation picks one of 100 organizations.
The baseline is ``UPDATE credit_accounts SET balance_millicredits = balance_millicredits - 1
WHERE org_id = ...`` (one committed transaction per update), measured in the same run on
its own organizations with the same shape. One hold+settle pair is two committed
transactions (hold before the run, settle after it), as in the studio, through
`services.credits` and an ORM session. Every thread keeps one connection for its loop, in
the baseline and in the ledger alike (a pooled session would add a checkout, and the
engine's pre-ping round trip, to every transaction of the ledger only). Each round measures
baseline and ledger back to back, so a ratio compares figures taken under the same load;
the goals are printed next to them.

A pair of two separately committed transactions has a floor on this machine: a transaction
that only takes the account lock already costs about as much as the baseline's update (the
commit dominates both), so those pairs stay well under half the baseline. In the studio the
credits do not commit on their own: the hold commits with the generation's insert and the
settle with its completion. The third figure measures exactly that: runs (insert a generation,
commit; mark it finished, commit) with and without the hold and the settle inside those same
transactions, in the same shape. The ledger's own cost per pair is the difference, and its
pairs per second (one over that cost, per thread) are compared with the baseline as above.

A fourth figure is the floor: pairs of the least a ledger movement can be (one statement that
moves the balance and inserts the entry, no check at all: no lock, no pools, no replay, no
closed hold), committed on their own like the second figure. No ledger that records each
movement does better on this machine, so it says how far the goals are reachable here.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python -m tests.perf.bench_ledger

runs in a throwaway database (created and dropped). Under pytest, ``test_bench_ledger`` runs
on the test database, at full size when the benchmarks were asked for on their own
(``make bench``) and at a small size inside the whole suite (see ``tests/perf/conftest.py``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

import models  # noqa: F401  (registers every table)
from core.clock import utcnow
from models import Generation, Organization
from services.credits import balance_get, credits_grant, credits_hold, credits_settle, ledger_sum
from tests.perf.throwaway import throwaway_database

C = 1000
SPREAD_ORGS = 100
GOALS = {"hot": 0.5, "spread": 0.7}  # ratio of hold+settle pairs to baseline updates
SIZES = {
    "small": {"threads": 3, "per_thread": 20, "rounds": 1},
    "full": {"threads": 4, "per_thread": 300, "rounds": 3},
}
_run_ids = itertools.count(1)
# Holds without a generation row: ids far above the runs' own generations (no collision).
_bare_generation_ids = itertools.count(1_500_000_000)


@dataclass(frozen=True)
class Figure:
    shape: str
    round: int
    baseline_per_second: float
    pairs_per_second: float
    runs_plain_per_second: float = 0.0  # runs without credits
    runs_ledger_per_second: float = 0.0  # the same runs with the hold and the settle inside
    floor_pairs_per_second: float = 0.0  # minimal movements, no checks (see the module doc)

    @property
    def riding_pairs_per_second(self) -> float:
        """Pairs per second the ledger's own cost allows when it rides the runs' commits."""
        if not self.runs_plain_per_second or not self.runs_ledger_per_second:
            return 0.0
        extra = 1 / self.runs_ledger_per_second - 1 / self.runs_plain_per_second
        return 1 / extra if extra > 0 else float("inf")

    @property
    def riding_ratio(self) -> float:
        return self.riding_pairs_per_second / self.baseline_per_second

    @property
    def ratio(self) -> float:
        """hold+settle pairs per second as a fraction of baseline updates per second."""
        return self.pairs_per_second / self.baseline_per_second if self.baseline_per_second else 0.0

    def line(self) -> str:
        return (
            f"{self.shape:<7} #{self.round}  baseline UPDATE {self.baseline_per_second:7.0f}/s   "
            f"hold+settle {self.pairs_per_second:6.0f} pairs/s   "
            f"ratio {self.ratio:5.2f}x (goal >= {GOALS[self.shape]}x)  "
            f"{self.ratio * 2:4.2f}x per committed transaction\n"
            f"{'':<11}runs {self.runs_plain_per_second:6.0f}/s without credits, "
            f"{self.runs_ledger_per_second:6.0f}/s with the hold and settle inside "
            f"({self.runs_ledger_per_second / self.runs_plain_per_second:4.2f}x); "
            f"the ledger's own cost {self.riding_pairs_per_second:6.0f} pairs/s   "
            f"ratio {self.riding_ratio:5.2f}x (goal >= {GOALS[self.shape]}x)\n"
            f"{'':<11}floor: minimal movements (no check) {self.floor_pairs_per_second:6.0f} "
            f"pairs/s   ratio {self.floor_ratio:5.2f}x"
        )

    @property
    def floor_ratio(self) -> float:
        return self.floor_pairs_per_second / self.baseline_per_second


def _create_orgs(engine: Engine, prefix: str, count: int, credits: int) -> list[int]:
    with Session(engine, expire_on_commit=False) as session:
        orgs = [Organization(slug=f"{prefix}-{i}", name=f"{prefix} {i}") for i in range(count)]
        session.add_all(orgs)
        session.flush()
        for org in orgs:
            credits_grant(
                session=session,
                org_id=org.id,
                amount_millicredits=credits,
                idempotency_key=f"{prefix}-seed-{org.id}",
            )
        session.commit()
        return [org.id for org in orgs]


def _timed(threads: int, work: Callable[[int], None]) -> float:
    """Run `work(thread_index)` on each thread, started together; wall seconds."""
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def runner(index: int) -> None:
        barrier.wait()
        try:
            work(index)
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)

    pool = [threading.Thread(target=runner, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


def _baseline(engine: Engine, org_ids: list[int], threads: int, per_thread: int) -> float:
    def work(index: int) -> None:
        rng = random.Random(index)
        statement = text(
            "UPDATE credit_accounts SET balance_millicredits = balance_millicredits - 1 "
            "WHERE org_id = :org_id"
        )
        with engine.connect() as conn:
            for _ in range(per_thread):
                with conn.begin():
                    conn.execute(statement, {"org_id": rng.choice(org_ids)})

    return threads * per_thread / _timed(threads, work)


def _hold_settle(
    engine: Engine, org_ids: list[int], threads: int, per_thread: int, tag: str
) -> float:
    def work(index: int) -> None:
        rng = random.Random(1000 + index)
        with engine.connect() as conn, Session(conn, expire_on_commit=False) as session:
            for i in range(per_thread):
                org_id = rng.choice(org_ids)
                generation_id = next(_bare_generation_ids)
                key = f"{tag}-{index}-{i}"
                credits_hold(
                    session=session,
                    org_id=org_id,
                    amount_millicredits=2 * C,
                    idempotency_key=f"{key}-hold",
                    generation_id=generation_id,
                )
                session.commit()
                credits_settle(
                    session=session,
                    generation_id=generation_id,
                    actual_millicredits=1500,
                    idempotency_key=f"{key}-settle",
                )
                session.commit()

    return threads * per_thread / _timed(threads, work)


# The least a movement can be: move the balance and insert the entry, in one statement.
_MINIMAL_MOVEMENT = text(
    "WITH moved AS (UPDATE credit_accounts SET balance_millicredits = balance_millicredits "
    "+ :amount, updated_at = now() WHERE org_id = :org_id RETURNING balance_millicredits) "
    "INSERT INTO credit_ledger_entries (org_id, kind, amount_millicredits, "
    "balance_after_millicredits, pool_amount_millicredits, idempotency_key, reference, memo, "
    "created_at) SELECT :org_id, 'adjustment', :amount, moved.balance_millicredits, 0, :key, "
    "'', '', now() FROM moved"
)


def _floor_pairs(
    engine: Engine, org_ids: list[int], threads: int, per_thread: int, tag: str
) -> float:
    """Pairs of minimal movements (a hold's and a settle's amounts), each committed."""

    def work(index: int) -> None:
        rng = random.Random(3000 + index)
        with engine.connect() as conn:
            for i in range(per_thread):
                org_id = rng.choice(org_ids)
                for step, amount in (("hold", -2 * C), ("settle", C // 2)):
                    with conn.begin():
                        conn.execute(
                            _MINIMAL_MOVEMENT,
                            {
                                "org_id": org_id,
                                "amount": amount,
                                "key": f"{tag}-{index}-{i}-{step}",
                            },
                        )

    return threads * per_thread / _timed(threads, work)


def _runs(
    engine: Engine,
    org_ids: list[int],
    threads: int,
    per_thread: int,
    tag: str,
    *,
    ledger: bool,
) -> float:
    """Runs per second: insert a queued generation and commit, then finish it and commit; with
    `ledger`, the hold goes in with the insert and the settle with the finish (as in the studio)."""

    def work(index: int) -> None:
        rng = random.Random(2000 + index)
        with engine.connect() as conn, Session(conn, expire_on_commit=False) as session:
            for i in range(per_thread):
                org_id = rng.choice(org_ids)
                generation = Generation(
                    public_id=f"{tag}-{index}-{i}",
                    org_id=org_id,
                    model_key="local-text",
                    modality="text",
                    prompt="A tagline",
                    estimate_millicredits=2 * C,
                    held_millicredits=2 * C,
                    created_at=utcnow(),
                )
                session.add(generation)
                session.flush()
                if ledger:
                    credits_hold(
                        session=session,
                        org_id=org_id,
                        amount_millicredits=2 * C,
                        idempotency_key=f"{tag}-{index}-{i}-hold",
                        generation_id=generation.id,
                    )
                session.commit()
                generation.status = "succeeded"
                generation.charged_millicredits = 1500
                generation.finished_at = utcnow()
                session.add(generation)
                if ledger:
                    credits_settle(
                        session=session,
                        generation_id=generation.id,
                        actual_millicredits=1500,
                        idempotency_key=f"{tag}-{index}-{i}-settle",
                    )
                session.commit()

    return threads * per_thread / _timed(threads, work)


def _vacuum(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE credit_accounts, credit_ledger_entries, generations")


def run_benchmark(
    engine: Engine, *, per_thread: int = 200, threads: int = 4, rounds: int = 1
) -> list[Figure]:
    """Measure both shapes `rounds` times on `engine` (which must have the schema and catalog)."""
    run = f"bench{next(_run_ids)}-{uuid.uuid4().hex[:6]}"
    plenty = 10 * per_thread * threads * 2 * C
    figures = []
    for round_number in range(1, rounds + 1):
        for shape, count in (("hot", 1), ("spread", SPREAD_ORGS)):
            _vacuum(engine)  # each round starts from tidy tables, not the last round's dead rows
            tag = f"{run}-{round_number}-{shape}"
            baseline_orgs = _create_orgs(engine, f"{tag}-base", count, plenty)
            ledger_orgs = _create_orgs(engine, f"{tag}-ledger", count, plenty)
            _baseline(engine, baseline_orgs, threads, max(5, per_thread // 10))  # warm-up
            _hold_settle(engine, ledger_orgs, threads, max(5, per_thread // 10), f"{tag}-warm")
            baseline = _baseline(engine, baseline_orgs, threads, per_thread)
            pairs = _hold_settle(engine, ledger_orgs, threads, per_thread, tag)
            plain = _runs(engine, ledger_orgs, threads, per_thread, f"{tag}-plain", ledger=False)
            riding = _runs(engine, ledger_orgs, threads, per_thread, f"{tag}-run", ledger=True)
            with Session(engine) as session:  # the ledger stayed consistent under load
                for org_id in ledger_orgs:
                    assert balance_get(session=session, org_id=org_id).balance == ledger_sum(
                        session=session, org_id=org_id
                    )
            floor_orgs = _create_orgs(engine, f"{tag}-floor", count, plenty)
            floor = _floor_pairs(engine, floor_orgs, threads, per_thread, f"{tag}-floor")
            figures.append(Figure(shape, round_number, baseline, pairs, plain, riding, floor))
    return figures


def report(figures: list[Figure], *, threads: int, per_thread: int) -> str:
    lines = [
        f"credits ledger benchmark: {threads} threads x {per_thread} ops, PostgreSQL",
        *(figure.line() for figure in figures),
    ]
    for shape in GOALS:
        ratios = [figure.ratio for figure in figures if figure.shape == shape]
        riding = [figure.riding_ratio for figure in figures if figure.shape == shape]
        floors = [figure.floor_ratio for figure in figures if figure.shape == shape]
        if len(ratios) > 1:
            lines.append(
                f"{shape:<7} ratio {min(ratios):.2f}x-{max(ratios):.2f}x committed on their own, "
                f"{min(riding):.2f}x-{max(riding):.2f}x riding the runs' commits, over "
                f"{len(ratios)} rounds (goal >= {GOALS[shape]}x); minimal movements without "
                f"any check {min(floors):.2f}x-{max(floors):.2f}x"
            )
    return "\n".join(lines)


# --- pytest entry point -------------------------------------------------------------------


def test_bench_ledger(pg_engine, bench_size):
    """Prints the figures at the chosen size (see tests/perf/conftest.py); never fails on timing."""
    size = SIZES[bench_size]
    figures = run_benchmark(pg_engine, **size)
    print("\n" + report(figures, threads=size["threads"], per_thread=size["per_thread"]))


# --- command line -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=SIZES["full"]["threads"])
    parser.add_argument("--per-thread", type=int, default=SIZES["full"]["per_thread"])
    parser.add_argument("--rounds", type=int, default=SIZES["full"]["rounds"])
    args = parser.parse_args()
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit(
            "Set TEST_DATABASE_URL to a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/test"
        )
    engine, drop = throwaway_database(url)
    try:
        started = time.perf_counter()
        figures = run_benchmark(
            engine, per_thread=args.per_thread, threads=args.threads, rounds=args.rounds
        )
        print(report(figures, threads=args.threads, per_thread=args.per_thread))
        print(f"total {time.perf_counter() - started:.1f} s")
    finally:
        drop()


if __name__ == "__main__":
    main()
