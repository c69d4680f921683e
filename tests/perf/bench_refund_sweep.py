"""Benchmark: the stuck-generation refund sweep on PostgreSQL as the generations table grows.

Not a pass/fail test. The table is filled with COPY: finished generations plus a fixed number
of stuck ``running`` generations (each with an open hold). Two sweeper processes started
together then fail and refund the stuck ones (status, history, release entry, balances, audit
entry; set-based, one transaction per batch of 1,000). The same number of stuck generations
is swept at each table size, so the figures show how the sweep grows with the table: seconds,
and ratios to the smallest size measured in the same run. A last sweep of twice as many stuck
generations in the largest table shows how it grows with the stuck count. The goal from
issue 21 is printed next to the figures.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python -m tests.perf.bench_refund_sweep

runs 10,000 stuck generations among 100,000, 500,000 and 1,000,000 rows in a throwaway
database (created and dropped). Under pytest, ``test_bench_refund_sweep`` runs on the test
database, at those sizes when the benchmarks were asked for on their own (``make bench``) and
at small sizes inside the whole suite (see ``tests/perf/conftest.py``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

import models  # noqa: F401  (registers every table)
from core import db
from models import CreditAccount, Organization
from services.generation_sweep import generations_sweep_stuck
from tests.perf.throwaway import throwaway_database

C = 1000
ORGS = 100
SIZES = {
    "small": {"sizes": [2_000, 10_000], "stuck": 200},
    "full": {"sizes": [100_000, 500_000, 1_000_000], "stuck": 10_000},
}
GOAL = (
    "goal: 10,000 stuck among 1,000,000 rows in <= 5 s, time growing no faster than the stuck count"
)
HOLD = 2 * C
ACTUAL = C

_GENERATION_COLUMNS = (
    "public_id, org_id, model_key, modality, prompt, params, status, status_history, "
    "estimate_millicredits, held_millicredits, charged_millicredits, created_at, started_at, "
    "finished_at"
)


@dataclass(frozen=True)
class Figure:
    total_rows: int
    stuck: int
    load_seconds: float
    sweep_seconds: float
    timed_out: int

    def line(self, baseline: Figure) -> str:
        ratio = self.sweep_seconds / baseline.sweep_seconds if baseline.sweep_seconds else 0.0
        per_row_ms = 1000 * self.sweep_seconds / max(self.timed_out, 1)
        return (
            f"{self.total_rows:>10,} rows  {self.stuck:>7,} stuck  sweep {self.sweep_seconds:7.2f} s"
            f"  ({per_row_ms:5.3f} ms/generation)  x{ratio:5.2f} vs {baseline.stuck:,} stuck "
            f"among {baseline.total_rows:,} rows  [load {self.load_seconds:5.1f} s]"
        )


def _create_orgs(engine: Engine) -> list[int]:
    run = uuid.uuid4().hex[:8]
    with Session(engine, expire_on_commit=False) as session:
        orgs = [
            Organization(slug=f"bench-{run}-{i}", name=f"Bench {i}", plan_key="growth")
            for i in range(ORGS)
        ]
        session.add_all(orgs)
        session.flush()
        session.add_all(CreditAccount(org_id=org.id, balance_millicredits=0) for org in orgs)
        session.commit()
        return [org.id for org in orgs]


def _copy_generations(engine: Engine, rows) -> None:
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY generations ({_GENERATION_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def _finished_rows(start: int, count: int, org_ids: list[int], now: datetime):
    history = json.dumps([{"status": "succeeded", "at": now.isoformat()}])
    for n in range(start, start + count):
        created = now - timedelta(days=30, seconds=-(n % 2_500_000))
        yield (
            f"gen_bench{n}",
            org_ids[n % len(org_ids)],
            "local-text",
            "text",
            "",
            "{}",
            "succeeded",
            history,
            HOLD,
            HOLD,
            ACTUAL,
            created,
            created,
            created + timedelta(seconds=5),
        )


def _stuck_rows(start: int, count: int, org_ids: list[int], now: datetime):
    for n in range(start, start + count):
        started = now - timedelta(minutes=20 + n % 40)
        history = json.dumps(
            [
                {"status": "queued", "at": started.isoformat()},
                {"status": "running", "at": started.isoformat()},
            ]
        )
        yield (
            f"gen_bench{n}",
            org_ids[n % len(org_ids)],
            "local-text",
            "text",
            "",
            "{}",
            "running",
            history,
            HOLD,
            HOLD,
            0,
            started,
            started,
            None,
        )


def _ledger_for(engine: Engine, first_public: int, last_public: int) -> None:
    """Open holds for the new stuck generations, and a grant so balances stay = SUM(ledger).

    Finished generations get no ledger rows: the sweep reaches the ledger only through the
    generation_id and idempotency-key indexes, and loading two million more rows would eat
    the benchmark's time budget.
    """
    bounds = {"lo": first_public, "hi": last_public}
    selection = (
        "FROM generations WHERE status = 'running' AND public_id LIKE 'gen_bench%' "
        "AND substring(public_id from 10)::bigint BETWEEN :lo AND :hi"
    )
    columns = (
        "INSERT INTO credit_ledger_entries (org_id, kind, amount_millicredits, "
        "balance_after_millicredits, pool_amount_millicredits, idempotency_key, generation_id, "
        "reference, memo, created_at) "
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                columns + "SELECT org_id, 'hold', -held_millicredits, 0, 0, "
                f"'generation:' || id || '\\:hold', id, '', '', created_at {selection}"
            ),
            bounds,
        )
        conn.execute(
            text(
                columns + "SELECT org_id, 'grant', count(*) * :hold, 0, 0, "
                f"'bench-grant:' || org_id || '-' || :lo, NULL, '', '', now() {selection} "
                "GROUP BY org_id"
            ),
            {**bounds, "hold": HOLD},
        )
        conn.execute(
            text(
                "UPDATE credit_accounts a SET balance_millicredits = s.total FROM "
                "(SELECT org_id, sum(amount_millicredits) AS total FROM credit_ledger_entries "
                "GROUP BY org_id) s WHERE a.org_id = s.org_id"
            )
        )


def _analyze(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE generations"))
        conn.execute(text("ANALYZE credit_ledger_entries"))
        conn.execute(text("ANALYZE credit_accounts"))


@dataclass(frozen=True)
class _SweepCount:
    timed_out: int
    refunded: int
    error_details: tuple[str, ...]


def _sweep_process(database_url: str, now: datetime) -> _SweepCount:
    """One sweeper in its own process (as several `python -m jobs` would be)."""
    engine = db.make_engine(database_url)
    try:
        result = generations_sweep_stuck(engine=engine, now=now)
    finally:
        engine.dispose()
    return _SweepCount(result.timed_out, result.refunded, tuple(result.error_details))


def _sweep_concurrently(engine: Engine, now: datetime, workers: int) -> list[_SweepCount]:
    """`workers` sweeper processes at once, started together; their counts."""
    if workers == 1:
        return [_sweep_process(engine.url.render_as_string(hide_password=False), now)]
    url = engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_sweep_process, [url] * workers, [now] * workers))


def run_benchmark(
    engine: Engine,
    *,
    sizes: list[int],
    stuck: int,
    workers: int = 2,
    progress: Callable[[str], None] = print,
) -> list[Figure]:
    """Grow the table to each size (cumulatively) and sweep `stuck` stuck generations each time;
    then add and sweep twice as many stuck generations in the largest table."""
    org_ids = _create_orgs(engine)
    now = datetime.now(UTC)
    total = 0
    figures: list[Figure] = []
    rounds = [(size, stuck) for size in sorted(sizes)]
    rounds.append((sorted(sizes)[-1] + 2 * stuck, 2 * stuck))
    for size, count in rounds:
        started = time.perf_counter()
        finished = size - total - count
        if finished < 0:
            raise ValueError(f"size {size:,} is too small for {count:,} stuck generations")
        first = total
        _copy_generations(engine, _finished_rows(first, finished, org_ids, now))
        _copy_generations(engine, _stuck_rows(first + finished, count, org_ids, now))
        _ledger_for(engine, first, first + finished + count - 1)
        _analyze(engine)
        total = size
        load = time.perf_counter() - started
        progress(f"  loaded {size:,} rows ({count:,} stuck) in {load:.1f} s; sweeping...")
        started = time.perf_counter()
        results = _sweep_concurrently(engine, now + timedelta(seconds=1), workers)
        sweep = time.perf_counter() - started
        errors = [detail for result in results for detail in result.error_details]
        assert not errors, errors[:3]
        timed_out = sum(result.timed_out for result in results)
        assert timed_out == count and sum(r.refunded for r in results) == count, results
        figures.append(Figure(size, count, load, sweep, timed_out))
    with engine.connect() as conn:  # the ledger stayed consistent
        mismatches = conn.execute(
            text(
                "SELECT count(*) FROM credit_accounts a WHERE a.balance_millicredits <> "
                "(SELECT coalesce(sum(amount_millicredits), 0) FROM credit_ledger_entries e WHERE e.org_id = a.org_id)"
            )
        ).scalar_one()
        assert mismatches == 0
    return figures


def report(figures: list[Figure], *, workers: int) -> str:
    baseline = figures[0]
    return "\n".join(
        [
            f"refund sweep benchmark (PostgreSQL, {workers} sweeper process(es) at once, "
            "set-based batches of 1,000 claimed with SKIP LOCKED)",
            *(figure.line(baseline) for figure in figures),
            GOAL,
        ]
    )


# --- pytest entry point -------------------------------------------------------------------


def test_bench_refund_sweep(pg_engine, bench_size):
    """Prints the figures at the chosen size (see tests/perf/conftest.py); never fails on timing."""
    figures = run_benchmark(pg_engine, **SIZES[bench_size], workers=2, progress=lambda _: None)
    print("\n" + report(figures, workers=2))


# --- command line -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stuck", type=int, default=SIZES["full"]["stuck"])
    parser.add_argument("--workers", type=int, default=2, help="concurrent sweeper processes")
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in SIZES["full"]["sizes"]),
        help="comma-separated row counts",
    )
    args = parser.parse_args()
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit(
            "Set TEST_DATABASE_URL to a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/test"
        )
    sizes = [int(size) for size in args.sizes.split(",")]
    engine, drop = throwaway_database(url)
    try:
        started = time.perf_counter()
        figures = run_benchmark(engine, sizes=sizes, stuck=args.stuck, workers=args.workers)
        print(report(figures, workers=args.workers))
        print(f"total {time.perf_counter() - started:.1f} s")
    finally:
        drop()


if __name__ == "__main__":
    main()
