"""Stuck-generation sweep on SQLite: fail + refund after 15 minutes, exactly once."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from core import clock
from models import AuditLogEntry, CreditLedgerEntry, Generation, UsageEvent
from models.enums import LedgerEntryKind
from services.credits import (
    balance_get,
    credits_hold,
    credits_release,
    credits_settle,
    ledger_sum,
)
from services.generation_sweep import (
    TIMED_OUT_CODE,
    TIMED_OUT_REASON,
    TIMED_OUT_REASON_NO_REFUND,
    generations_sweep_stuck,
    release_key,
)
from tests.factories import make_org

C = 1000
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def frozen():
    clock.freeze(NOW)
    yield
    clock.freeze(None)


def make_generation(
    session: Session,
    org_id: int,
    *,
    minutes_ago: float,
    status: str = "running",
    hold: int = 2 * C,
    started: bool = True,
) -> int:
    moment = NOW - timedelta(minutes=minutes_ago)
    history = [{"status": "queued", "at": moment.isoformat()}]
    if status != "queued":
        history.append({"status": "running", "at": moment.isoformat()})
    generation = Generation(
        public_id=f"gen_test{next(_ids)}",
        org_id=org_id,
        model_key="local-text",
        modality="text",
        prompt="hello",
        status=status,
        status_history=history,
        estimate_millicredits=hold,
        held_millicredits=hold,
        created_at=moment,
        started_at=moment if (started and status != "queued") else None,
    )
    session.add(generation)
    session.flush()
    if hold:
        credits_hold(
            session=session,
            org_id=org_id,
            amount_millicredits=hold,
            idempotency_key=f"generation:{generation.id}:hold",
            generation_id=generation.id,
        )
    session.commit()
    return generation.id


def sweep(session: Session, **kwargs):
    """Run the sweep with the test's session outside a transaction (SQLite: one writer)."""
    session.rollback()
    return generations_sweep_stuck(**kwargs)


def get(session: Session, generation_id: int) -> Generation:
    return session.exec(
        select(Generation)
        .where(Generation.id == generation_id)
        .execution_options(populate_existing=True)
    ).one()


def test_stuck_running_generation_is_failed_and_refunded_once(engine, session):
    org_id = make_org(session, credits=100 * C).id
    stuck = make_generation(session, org_id, minutes_ago=16)
    assert balance_get(session=session, org_id=org_id).balance == 98 * C

    result = sweep(session)

    assert (result.timed_out, result.refunded, result.errors) == (1, 1, 0)
    assert result.refunded_millicredits == 2 * C
    generation = get(session, stuck)
    assert generation.status == "failed"
    assert generation.failure_code == TIMED_OUT_CODE
    assert generation.failure_reason == TIMED_OUT_REASON
    assert clock.as_utc(generation.finished_at) == NOW
    assert generation.status_history[-1] == {"status": "failed", "at": NOW.isoformat()}
    assert [h["status"] for h in generation.status_history] == ["queued", "running", "failed"]
    releases = session.exec(
        select(CreditLedgerEntry).where(CreditLedgerEntry.kind == LedgerEntryKind.release.value)
    ).all()
    assert [r.idempotency_key for r in releases] == [release_key(stuck)]
    assert balance_get(session=session, org_id=org_id).balance == 100 * C
    assert ledger_sum(session=session, org_id=org_id) == 100 * C
    audit = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "generation.timed_out")
    ).all()
    assert len(audit) == 1 and audit[0].target_id == generation.public_id
    usage = session.exec(select(UsageEvent).where(UsageEvent.generation_id == stuck)).all()
    assert [(u.outcome, u.millicredits, u.source) for u in usage] == [("timed_out", 0, "studio")]

    # A second run (or a second process) finds nothing to do.
    again = sweep(session)
    assert (again.timed_out, again.refunded) == (0, 0)
    assert balance_get(session=session, org_id=org_id).balance == 100 * C
    assert len(session.exec(select(UsageEvent)).all()) == 1


def test_recent_and_finished_generations_are_left_alone(engine, session):
    org_id = make_org(session, credits=100 * C).id
    recent = make_generation(session, org_id, minutes_ago=14)
    done = make_generation(session, org_id, minutes_ago=60)
    session.rollback()
    with Session(engine) as other:
        generation = get(other, done)
        generation.status = "succeeded"
        other.add(generation)
        credits_settle(
            session=other,
            actual_millicredits=C,
            idempotency_key=f"generation:{done}:settle",
            generation_id=done,
        )
        other.commit()

    result = sweep(session)

    assert result.timed_out == 0
    assert get(session, recent).status == "running"
    assert get(session, done).status == "succeeded"
    assert balance_get(session=session, org_id=org_id).balance == 100 * C - 2 * C - C


def test_queued_generation_uses_created_at(engine, session):
    org_id = make_org(session, credits=100 * C).id
    queued_old = make_generation(session, org_id, minutes_ago=20, status="queued")
    queued_new = make_generation(session, org_id, minutes_ago=5, status="queued")
    running_without_start = make_generation(session, org_id, minutes_ago=30, started=False)

    result = sweep(session)

    assert result.timed_out == 2
    assert get(session, queued_old).status == "failed"
    assert get(session, queued_old).status_history[-1]["status"] == "failed"
    assert get(session, queued_new).status == "queued"
    assert get(session, running_without_start).status == "failed"


def test_hold_already_released_elsewhere_is_not_refunded_twice(engine, session):
    org_id = make_org(session, credits=100 * C).id
    stuck = make_generation(session, org_id, minutes_ago=30)
    # The studio path released the hold (its own key) but crashed before marking the run.
    credits_release(
        session=session, idempotency_key=f"generation:{stuck}:fail-release", generation_id=stuck
    )
    session.commit()

    result = sweep(session)

    assert (result.timed_out, result.refunded, result.already_closed) == (1, 0, 1)
    generation = get(session, stuck)
    assert generation.status == "failed"
    assert generation.failure_reason == TIMED_OUT_REASON  # the credits did come back
    assert balance_get(session=session, org_id=org_id).balance == 100 * C
    assert ledger_sum(session=session, org_id=org_id) == 100 * C


def test_hold_settled_elsewhere_says_no_refund(engine, session):
    org_id = make_org(session, credits=100 * C).id
    stuck = make_generation(session, org_id, minutes_ago=30)
    credits_settle(
        session=session,
        actual_millicredits=C,
        idempotency_key=f"generation:{stuck}:settle",
        generation_id=stuck,
    )
    session.commit()

    result = sweep(session)

    assert (result.timed_out, result.refunded, result.already_closed) == (1, 0, 1)
    assert get(session, stuck).failure_reason == TIMED_OUT_REASON_NO_REFUND
    assert balance_get(session=session, org_id=org_id).balance == 99 * C


def test_generation_without_hold_is_failed_without_refund(engine, session):
    org_id = make_org(session, credits=100 * C).id
    stuck = make_generation(session, org_id, minutes_ago=30, hold=0)

    result = sweep(session)

    assert (result.timed_out, result.refunded, result.errors) == (1, 0, 0)
    assert get(session, stuck).failure_reason == TIMED_OUT_REASON_NO_REFUND


def test_batches_cover_every_stuck_generation(engine, session):
    org_a = make_org(session, slug="org-a", credits=100 * C).id
    org_b = make_org(session, slug="org-b", credits=100 * C).id
    ids = [
        make_generation(session, org_a if i % 2 else org_b, minutes_ago=20, hold=C)
        for i in range(7)
    ]

    result = sweep(session, batch_size=3)

    assert result.timed_out == 7 and result.refunded == 7
    assert all(get(session, i).status == "failed" for i in ids)
    for org_id in (org_a, org_b):
        assert balance_get(session=session, org_id=org_id).balance == 100 * C
        assert ledger_sum(session=session, org_id=org_id) == 100 * C


def test_one_failing_row_does_not_block_the_others(engine, session, monkeypatch):
    org_id = make_org(session, credits=100 * C).id
    bad = make_generation(session, org_id, minutes_ago=20)
    good = make_generation(session, org_id, minutes_ago=20)
    from services import generation_sweep

    real = generation_sweep.credits_release

    def flaky(**kwargs):
        if kwargs["generation_id"] == bad:
            raise RuntimeError("boom")
        return real(**kwargs)

    monkeypatch.setattr(generation_sweep, "credits_release", flaky)
    result = sweep(session)

    assert result.timed_out == 1 and result.errors == 1
    assert "boom" in result.error_details[0] and result.failed_generation_ids == [bad]
    assert get(session, bad).status == "running"  # retried by the next run
    assert get(session, good).status == "failed"
    monkeypatch.setattr(generation_sweep, "credits_release", real)
    assert sweep(session).timed_out == 1
    assert balance_get(session=session, org_id=org_id).balance == 100 * C
