"""Benchmark: the Analytics page's 30-day query over many usage events on PostgreSQL.

Not a pass/fail test; it prints. Usage events are loaded with COPY (80% for the measured
organization, the rest spread over nine others; 8 members, 4 projects, 5 models, four
sources, 3% failed runs) over the last 30 days, the roll-up job runs once (timed), and then:

  * page      what the page's refresh reads for 30 days (`analytics_report`: KPIs by day,
              modality and source, the previous 30 days, by model, member and project, with
              the raw events after today's watermark; plus the "why is this empty" checks);
  * raw       one raw ``GROUP BY day, modality, source`` over the organization's events of
              those 30 days (the single cheapest query the page would need without a roll-up);
  * raw report the page's groupings (day/modality/source, model, member, project) from raw
              events only, as the page would read them without a roll-up.

p50 of several runs each, and the ratio raw / page (goal from issue 14: page >= 10x faster
than raw, under 100 ms).

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python -m tests.perf.bench_analytics

loads 1,000,000 events into a throwaway database (created and dropped). Under pytest,
``test_bench_analytics`` uses the test database: 1,000,000 events when the benchmarks were
asked for on their own, 50,000 inside the whole suite or with ``BENCH_SIZE=small``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

import models  # noqa: F401  (registers every table)
from models import Organization, Project, User
from models.enums import OrgRole
from services import orgs, policy
from services.analytics import checklist, queries, rollup
from services.analytics.common import day_bounds
from tests.perf.throwaway import throwaway_database

SIZES = {"small": 50_000, "full": 1_000_000}
REPEATS = {"small": 5, "full": 7}
GOAL = "goal: page >= 10x faster than the raw GROUP BY, p50 under 100 ms"
MODELS = (
    ("local-text", "text", 40),
    ("hosted-text", "text", 25),
    ("local-image", "image", 20),
    ("local-image-hd", "image", 10),
    ("local-video", "video", 5),
)
SOURCES = (("studio", 70), ("api", 15), ("assistant", 10), ("intel", 5))
_COLUMNS = (
    "org_id, project_id, user_id, source, model_key, modality, units, millicredits, reconciled, "
    "provider_units, outcome, request_id, occurred_at"
)


def _weighted(options, rng: random.Random, count: int) -> list:
    values = [option[:-1] if len(option) > 2 else option[0] for option in options]
    return rng.choices(values, weights=[option[-1] for option in options], k=count)


def _seed(engine: Engine) -> tuple[int, list[int], list[int], list[int], int]:
    """The measured org (owner + 7 members, 4 projects), nine other orgs; returns ids."""
    run = uuid.uuid4().hex[:8]
    with Session(engine, expire_on_commit=False) as session:
        owner = User(email=f"owner-{run}@bench.test", name="Owner")
        session.add(owner)
        session.flush()
        org = orgs.org_create(
            session=session, owner=owner, name=f"Bench {run}", slug=f"bench-{run}", plan_key="scale"
        )
        members = [owner.id]
        for index in range(7):
            user = User(email=f"m{index}-{run}@bench.test", name=f"Member {index}")
            session.add(user)
            session.flush()
            orgs.membership_add(
                session=session, org_id=org.id, user_id=user.id, role=OrgRole.editor
            )
            members.append(user.id)
        projects = []
        for index in range(4):
            project = Project(org_id=org.id, name=f"Project {index}")
            session.add(project)
            session.flush()
            projects.append(project.id)
        others = []
        for index in range(9):
            other = Organization(
                slug=f"other-{run}-{index}", name=f"Other {index}", plan_key="growth"
            )
            session.add(other)
            session.flush()
            others.append(other.id)
        session.commit()
        return org.id, members, projects, others, owner.id


def _load(
    engine: Engine, count: int, org_id: int, members, projects, others, now: datetime
) -> None:
    rng = random.Random(14)
    models_ = _weighted(MODELS, rng, count)
    sources = _weighted(SOURCES, rng, count)
    span = int(timedelta(days=30).total_seconds()) - 3600
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY usage_events ({_COLUMNS}) FROM STDIN") as copy:
                for n in range(count):
                    mine = n % 5 != 0
                    model_key, modality = models_[n]
                    failed = n % 33 == 0
                    units = 0 if failed else 100 + n % 900
                    copy.write_row(
                        (
                            org_id if mine else others[n % len(others)],
                            projects[n % len(projects)] if mine and n % 7 else None,
                            members[n % len(members)] if mine else None,
                            sources[n],
                            model_key,
                            modality,
                            units,
                            0 if failed else units * 3,
                            False,
                            None if failed else units,
                            "failed" if failed else "succeeded",
                            f"req_{n}",
                            now - timedelta(seconds=3600 + rng.randrange(span)),
                        )
                    )
        raw.commit()
    finally:
        raw.close()
    with engine.connect() as conn:
        conn.execute(text("ANALYZE usage_events"))
        conn.commit()


def _p50(work: Callable[[], object], repeats: int) -> float:
    work()  # warm the caches and the plans
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_benchmark(engine: Engine, *, events: int, repeats: int) -> list[str]:
    now = datetime.now(UTC)
    org_id, members, projects, others, owner_id = _seed(engine)
    started = time.perf_counter()
    _load(engine, events, org_id, members, projects, others, now)
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rolled = rollup.analytics_rollup_recent(engine=engine, now=now)
    rollup_seconds = time.perf_counter() - started
    with engine.connect() as conn:
        conn.execute(text("ANALYZE analytics_rollups"))
        conn.commit()
    with Session(engine, expire_on_commit=False) as session:
        owner = session.get(User, owner_id)
        actor = policy.actor_for(session=session, user=owner, org_id=org_id)
        period = queries.period_resolve(session=session, org_id=org_id, key="30d", now=now)
        mine = session.exec(
            text("SELECT count(*) FROM usage_events WHERE org_id = :o"), params={"o": org_id}
        ).one()[0]

        def page() -> None:
            report = queries.analytics_report(
                session=session, actor=actor, org_id=org_id, scope=queries.Scope(), period=period
            )
            checklist.empty_checklist(
                session=session,
                org_id=org_id,
                org_slug="bench",
                scope=queries.Scope(),
                scope_label="Whole organization",
                report=report,
                now=now,
            )
            session.rollback()

        start, _ = day_bounds(period.first)
        _, end = day_bounds(period.last)

        def raw() -> None:
            session.exec(
                text(
                    "SELECT date(timezone('UTC', occurred_at)), modality, source, count(*), "
                    "sum(CASE WHEN outcome IN ('failed', 'timed_out') THEN 1 ELSE 0 END), "
                    "sum(units), sum(millicredits) FROM usage_events "
                    "WHERE org_id = :o AND occurred_at >= :s AND occurred_at < :e "
                    "GROUP BY 1, 2, 3"
                ),
                params={"o": org_id, "s": start, "e": end},
            ).all()
            session.rollback()

        def raw_page() -> None:
            # The report's groupings with nothing rolled up: every figure from raw events.
            for dims in (
                ("day", "modality", "source"),
                ("model_key",),
                ("user_id",),
                ("project_id",),
            ):
                queries.aggregate(
                    session,
                    org_id=org_id,
                    scope=queries.Scope(),
                    first=period.last + timedelta(days=1),  # no roll-up day matches
                    last=period.last,
                    dims=dims,
                    ranges=[(start, end)],
                )
            session.rollback()

        page_p50 = _p50(page, repeats)
        raw_p50 = _p50(raw, repeats)
        raw_page_p50 = _p50(raw_page, repeats)
    return [
        f"analytics over {events:,} usage events ({mine:,} of the measured organization), "
        f"30 days, PostgreSQL; p50 of {repeats}",
        f"  load {load_seconds:6.1f} s   roll-up job {rollup_seconds:6.1f} s "
        f"({rolled.items} days, {rolled.groups:,} groups)",
        f"  page (roll-up + raw tail, checks) {page_p50 * 1000:8.1f} ms",
        f"  raw GROUP BY day, modality, source {raw_p50 * 1000:8.1f} ms   "
        f"ratio raw / page x{raw_p50 / page_p50:6.1f}",
        f"  raw report (same groupings, no roll-up) {raw_page_p50 * 1000:8.1f} ms   "
        f"ratio x{raw_page_p50 / page_p50:6.1f}",
        f"  {GOAL}",
    ]


# --- pytest entry point -------------------------------------------------------------------


def test_bench_analytics(pg_engine, bench_size):
    """Prints the figures at the chosen size (see tests/perf/conftest.py); never fails on timing."""
    lines = run_benchmark(pg_engine, events=SIZES[bench_size], repeats=REPEATS[bench_size])
    print("\n" + "\n".join(lines))


# --- command line -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=SIZES["full"])
    parser.add_argument("--repeats", type=int, default=REPEATS["full"])
    args = parser.parse_args()
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit(
            "Set TEST_DATABASE_URL to a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/test"
        )
    engine, drop = throwaway_database(url)
    try:
        print("\n".join(run_benchmark(engine, events=args.events, repeats=args.repeats)))
    finally:
        drop()


if __name__ == "__main__":
    main()
