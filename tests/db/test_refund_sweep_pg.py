"""Refund sweep under real concurrency on PostgreSQL: SKIP LOCKED claims, one refund per run."""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core import clock
from core.clock import utcnow
from models import AuditLogEntry, CreditLedgerEntry, CreditPool, Generation, UsageEvent
from models.enums import LedgerEntryKind
from services.credits import (
    HoldAlreadyClosed,
    balance_get,
    credits_hold,
    credits_release,
    credits_settle,
    ledger_list,
    ledger_sum,
    pool_allocate,
)
from services.generation_keys import release_key
from services.generation_sweep import (
    TIMED_OUT_REASON,
    TIMED_OUT_REASON_NO_REFUND,
    generations_sweep_stuck,
)
from tests.conftest import requires_postgres
from tests.factories import make_org, make_projects
from tests.unit import test_jobs_refund_sweep as sweep_rules

pytestmark = [requires_postgres, pytest.mark.postgres]

C = 1000
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def set_based_batches_only(request, caplog):
    """Every sweep here takes the set-based path: a batch falling back to one generation at a
    time (which would hide a broken batch statement) fails the test, unless it is the point."""
    caplog.set_level(logging.WARNING, logger="services.generation_sweep")
    yield
    if not getattr(request.function, "expects_batch_fallback", False):
        records = caplog.get_records("call")  # this fixture's own phase records nothing
        fallbacks = [r.getMessage() for r in records if r.name == "services.generation_sweep"]
        assert not fallbacks, fallbacks


def make_generations(
    engine: Engine,
    org_id: int,
    count: int,
    *,
    minutes_ago: float,
    hold: int,
    project_id: int | None = None,
) -> list[int]:
    moment = utcnow() - timedelta(minutes=minutes_ago)
    ids = []
    with Session(engine) as session:
        for _ in range(count):
            generation = Generation(
                public_id=f"gen_pg{next(_ids)}",
                org_id=org_id,
                project_id=project_id,
                model_key="local-text",
                modality="text",
                status="running",
                status_history=[
                    {"status": "queued", "at": moment.isoformat()},
                    {"status": "running", "at": moment.isoformat()},
                ],
                held_millicredits=hold,
                created_at=moment,
                started_at=moment,
            )
            session.add(generation)
            session.flush()
            if hold:
                credits_hold(
                    session=session,
                    org_id=org_id,
                    amount_millicredits=hold,
                    idempotency_key=f"generation:{generation.id}:hold",
                    project_id=project_id,
                    generation_id=generation.id,
                )
            ids.append(generation.id)
        session.commit()
    return ids


def run_together(functions) -> list:
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)

    def worker(index, function):
        barrier.wait(timeout=30)
        try:
            results[index] = function()
        except BaseException as exc:  # surfaced by the assertions below
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def closing_entries(session: Session) -> list[CreditLedgerEntry]:
    return list(
        session.exec(
            select(CreditLedgerEntry).where(
                CreditLedgerEntry.kind.in_(
                    [LedgerEntryKind.release.value, LedgerEntryKind.settle.value]
                )
            )
        )
    )


def test_two_concurrent_sweeps_refund_each_generation_once(pg_engine):
    orgs = [make_org(pg_engine, slug=f"sweep-{i}", credits=10_000 * C).id for i in range(3)]
    stuck = [
        g
        for org_id in orgs
        for g in make_generations(pg_engine, org_id, 40, minutes_ago=20, hold=3 * C)
    ]
    recent = make_generations(pg_engine, orgs[0], 5, minutes_ago=5, hold=C)

    results = run_together(
        [lambda: generations_sweep_stuck(engine=pg_engine, batch_size=7) for _ in range(2)]
        + [lambda: generations_sweep_stuck(engine=pg_engine, batch_size=11)]
    )

    for result in results:
        assert not isinstance(result, BaseException), result
        assert result.errors == 0, result.error_details
    assert sum(r.timed_out for r in results) == len(stuck)
    assert sum(r.refunded for r in results) == len(stuck)
    with Session(pg_engine) as session:
        releases = [e for e in closing_entries(session) if e.kind == "release"]
        per_generation = Counter(e.generation_id for e in releases)
        assert set(per_generation) == set(stuck)
        assert set(per_generation.values()) == {1}
        assert {e.idempotency_key for e in releases} == {f"generation:{g}:release" for g in stuck}
        statuses = dict(session.exec(select(Generation.id, Generation.status)).all())
        assert {statuses[g] for g in stuck} == {"failed"}
        assert {statuses[g] for g in recent} == {"running"}
        audits = session.exec(
            select(AuditLogEntry).where(AuditLogEntry.action == "generation.timed_out")
        ).all()
        assert len(audits) == len(stuck)
        usage = session.exec(select(UsageEvent.generation_id, UsageEvent.outcome)).all()
        assert Counter(g for g, _ in usage) == Counter(stuck)  # one usage event per swept run
        assert {outcome for _, outcome in usage} == {"timed_out"}
        for org_id in orgs:
            balance = balance_get(session=session, org_id=org_id).balance
            assert balance == ledger_sum(session=session, org_id=org_id)
        assert balance_get(session=session, org_id=orgs[1]).balance == 10_000 * C
        assert balance_get(session=session, org_id=orgs[0]).balance == 10_000 * C - 5 * C


def _complete_like_the_studio(engine: Engine, generation_id: int) -> str:
    """The studio's completion rule: settle only if still running, under the row lock."""
    with Session(engine, expire_on_commit=False) as session:
        generation = session.exec(
            select(Generation).where(Generation.id == generation_id).with_for_update()
        ).one()
        if generation.status != "running":
            generation.late_result = {"text": "late"}
            session.add(generation)
            session.commit()
            return "late"
        try:
            credits_settle(
                session=session,
                actual_millicredits=C,
                idempotency_key=f"generation:{generation_id}:settle",
                generation_id=generation_id,
            )
        except HoldAlreadyClosed:
            session.rollback()
            return "closed"
        generation.status = "succeeded"
        generation.finished_at = datetime.now(UTC)
        session.add(generation)
        session.commit()
        return "settled"


def test_sweep_racing_completions_closes_each_hold_once(pg_engine):
    org_id = make_org(pg_engine, slug="race", credits=10_000 * C).id
    stuck = make_generations(pg_engine, org_id, 30, minutes_ago=16, hold=2 * C)

    def completions():
        return [_complete_like_the_studio(pg_engine, g) for g in stuck]

    results = run_together(
        [completions, lambda: generations_sweep_stuck(engine=pg_engine, batch_size=5)]
    )
    assert not any(isinstance(r, BaseException) for r in results), results
    outcomes, sweep = results
    assert "closed" not in outcomes
    with Session(pg_engine) as session:
        closing = Counter(e.generation_id for e in closing_entries(session))
        assert set(closing) == set(stuck) and set(closing.values()) == {1}
        kinds = {e.generation_id: e.kind for e in closing_entries(session)}
        rows = {g.id: g for g in session.exec(select(Generation))}
        for generation_id, outcome in zip(stuck, outcomes, strict=True):
            row = rows[generation_id]
            if outcome == "settled":
                assert row.status == "succeeded" and kinds[generation_id] == "settle"
            else:
                assert row.status == "failed" and kinds[generation_id] == "release"
                assert row.late_result == {"text": "late"}
        assert sweep.timed_out == sum(1 for o in outcomes if o == "late")
        assert balance_get(session=session, org_id=org_id).balance == ledger_sum(
            session=session, org_id=org_id
        )


def test_two_sweepers_over_one_stuck_set_release_every_hold_exactly_once(pg_engine):
    """Two sweepers start together on the same 600 stuck runs in 12 organizations, some with
    project pools; batches small enough that they claim alternately."""
    orgs = [make_org(pg_engine, slug=f"pair-{i}", credits=1_000 * C) for i in range(12)]
    pooled_projects = {}
    for org in orgs[:4]:  # a third of the organizations hold from a project pool
        project_id = make_projects(pg_engine, org, 1)[0].id
        with Session(pg_engine) as session:
            pool_allocate(
                session=session,
                org_id=org.id,
                project_id=project_id,
                amount_millicredits=300 * C,
                idempotency_key=f"pool-{org.id}",
            )
            session.commit()
        pooled_projects[org.id] = project_id
    stuck = []
    for org in orgs:
        stuck += make_generations(
            pg_engine,
            org.id,
            50,
            minutes_ago=30,
            hold=2 * C,
            project_id=pooled_projects.get(org.id),
        )

    results = run_together(
        [lambda: generations_sweep_stuck(engine=pg_engine, batch_size=40) for _ in range(2)]
    )

    for result in results:
        assert not isinstance(result, BaseException), result
        assert result.errors == 0, result.error_details
    assert all(result.timed_out > 0 for result in results), "both sweepers took a share"
    assert sum(r.timed_out for r in results) == sum(r.refunded for r in results) == len(stuck)
    assert sum(r.refunded_millicredits for r in results) == len(stuck) * 2 * C
    with Session(pg_engine) as session:
        releases = [e for e in closing_entries(session) if e.kind == "release"]
        assert Counter(e.generation_id for e in releases) == Counter(stuck)
        assert {e.idempotency_key for e in releases} == {release_key(g) for g in stuck}
        for org in orgs:
            view = balance_get(session=session, org_id=org.id)
            assert view.balance == ledger_sum(session=session, org_id=org.id) == 1_000 * C
            assert view.pooled == (300 * C if org.id in pooled_projects else 0)
            newest = ledger_list(session=session, org_id=org.id, limit=1)[0]
            assert newest.balance_after_millicredits == view.balance
        for pool in session.exec(select(CreditPool)):
            entries = session.exec(
                select(CreditLedgerEntry).where(CreditLedgerEntry.pool_id == pool.id)
            ).all()
            assert pool.balance_millicredits == sum(e.pool_amount_millicredits for e in entries)
        audits = session.exec(
            select(AuditLogEntry).where(AuditLogEntry.action == "generation.timed_out")
        ).all()
        assert Counter(int(a.details["released_millicredits"]) for a in audits) == {
            2 * C: len(stuck)
        }

    again = generations_sweep_stuck(engine=pg_engine)
    assert (again.timed_out, again.refunded, again.errors) == (0, 0, 0)


def test_sweep_finds_holds_closed_before_it_and_refunds_nothing_twice(pg_engine):
    org_id = make_org(pg_engine, slug="closed-before", credits=100 * C).id
    released_by_studio, settled, released_elsewhere, open_hold = make_generations(
        pg_engine, org_id, 4, minutes_ago=40, hold=3 * C
    )
    no_hold = make_generations(pg_engine, org_id, 1, minutes_ago=40, hold=0)[0]
    with Session(pg_engine) as session:
        # The studio's failure path released with the shared key, then crashed before it
        # marked the run failed.
        credits_release(
            session=session,
            generation_id=released_by_studio,
            idempotency_key=release_key(released_by_studio),
        )
        credits_settle(
            session=session,
            generation_id=settled,
            actual_millicredits=C,
            idempotency_key=f"generation:{settled}:settle",
        )
        credits_release(
            session=session,
            generation_id=released_elsewhere,
            idempotency_key=f"support:{released_elsewhere}",
        )
        session.commit()
        balance_before = balance_get(session=session, org_id=org_id).balance

    result = generations_sweep_stuck(engine=pg_engine)

    assert (result.timed_out, result.refunded, result.already_closed) == (5, 1, 3)
    assert result.refunded_millicredits == 3 * C
    with Session(pg_engine) as session:
        assert balance_get(session=session, org_id=org_id).balance == balance_before + 3 * C
        assert ledger_sum(session=session, org_id=org_id) == balance_before + 3 * C
        rows = {g.id: g for g in session.exec(select(Generation))}
        assert {rows[g].status for g in rows} == {"failed"}
        assert rows[open_hold].failure_reason == TIMED_OUT_REASON
        assert rows[released_by_studio].failure_reason == TIMED_OUT_REASON
        assert rows[released_elsewhere].failure_reason == TIMED_OUT_REASON
        assert rows[settled].failure_reason == TIMED_OUT_REASON_NO_REFUND
        assert rows[no_hold].failure_reason == TIMED_OUT_REASON_NO_REFUND
        assert [h["status"] for h in rows[open_hold].status_history] == [
            "queued",
            "running",
            "failed",
        ]
        details = {
            a.target_id: a.details
            for a in session.exec(
                select(AuditLogEntry).where(AuditLogEntry.action == "generation.timed_out")
            )
        }
        by_public = {rows[g].public_id: g for g in rows}
        closed_by = {by_public[t]: d["hold_already_closed_by"] for t, d in details.items()}
        assert closed_by == {
            released_by_studio: "release",
            settled: "settle",
            released_elsewhere: "release",
            open_hold: None,
            no_hold: "no_hold",
        }


def test_a_batch_that_fails_is_retried_one_generation_at_a_time(pg_engine, monkeypatch):
    org_id = make_org(pg_engine, slug="bad-batch", credits=100 * C).id
    bad, *good = make_generations(pg_engine, org_id, 5, minutes_ago=20, hold=C)
    from services import generation_sweep

    real_batch, real_release = generation_sweep._time_out_batch, generation_sweep.credits_release

    def batch_failing_on_bad(connection, claimed, now):
        if any(generation_id == bad for generation_id, _ in claimed):
            raise RuntimeError("boom")
        return real_batch(connection, claimed, now)

    def release_failing_on_bad(**kwargs):
        if kwargs["generation_id"] == bad:
            raise RuntimeError("boom")
        return real_release(**kwargs)

    monkeypatch.setattr(generation_sweep, "_time_out_batch", batch_failing_on_bad)
    monkeypatch.setattr(generation_sweep, "credits_release", release_failing_on_bad)
    result = generations_sweep_stuck(engine=pg_engine, batch_size=2)

    assert (result.timed_out, result.refunded, result.errors) == (4, 4, 1)
    assert result.failed_generation_ids == [bad] and "boom" in result.error_details[0]
    with Session(pg_engine) as session:
        statuses = dict(session.exec(select(Generation.id, Generation.status)).all())
    assert statuses[bad] == "running" and {statuses[g] for g in good} == {"failed"}

    monkeypatch.undo()
    assert generations_sweep_stuck(engine=pg_engine).refunded == 1
    with Session(pg_engine) as session:
        assert balance_get(session=session, org_id=org_id).balance == 100 * C


test_a_batch_that_fails_is_retried_one_generation_at_a_time.expects_batch_fallback = True


# --- the sweep's rules again, on PostgreSQL's set-based path -------------------------------
# tests/unit/test_jobs_refund_sweep.py runs them on SQLite (the simple path). The test that
# makes one row fail by replacing credits_release has its PostgreSQL counterpart above.


@pytest.fixture
def frozen_clock():
    clock.freeze(sweep_rules.NOW)
    yield
    clock.freeze(None)


@pytest.fixture
def engine(pg_engine):
    return pg_engine


@pytest.fixture
def session(pg_engine):
    with Session(pg_engine, expire_on_commit=False) as session:
        yield session


def _on_postgres(test):
    @functools.wraps(test)
    def rerun(*args, **kwargs):
        return test(*args, **kwargs)

    return pytest.mark.usefixtures("frozen_clock")(rerun)


for _name, _test in vars(sweep_rules).items():
    if _name.startswith("test_") and _name != "test_one_failing_row_does_not_block_the_others":
        globals()[_name] = _on_postgres(_test)
