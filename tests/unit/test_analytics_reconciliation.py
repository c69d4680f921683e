"""Reconciliation: each UTC day against the ledger, provider units and payments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import delete, select

from models import CreditLedgerEntry, Invoice, ReconciliationDay, UsageEvent
from services import credits
from services.analytics import reconciliation, rollup
from services.generation_keys import settle_key
from tests.analytics_world import AnalyticsWorld

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
OLD = TODAY - timedelta(days=3)  # past the provider window


def at(day, hour: int = 10) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC).replace(hour=hour)


@pytest.fixture
def world(session) -> AnalyticsWorld:
    return AnalyticsWorld(session)


def store(session, world, day):
    check = reconciliation.reconciliation_day_store(
        session=session, org_id=world.org.id, day=day, now=NOW
    )
    session.commit()
    return check


def test_a_day_that_agrees_everywhere_is_reconciled_and_its_events_marked(world, session):
    world.run(at(OLD))
    world.run(at(OLD), fail=True)
    check = store(session, world, OLD)
    assert check.status == "reconciled", check.issues
    assert check.ledger_millicredits == check.metered_millicredits > 0
    assert all(e.reconciled for e in session.exec(select(UsageEvent)))
    row = session.exec(select(ReconciliationDay)).one()
    assert (row.day, row.status, row.difference_millicredits) == (OLD, "reconciled", 0)


def test_a_deleted_settle_entry_turns_the_day_into_a_mismatch_naming_the_generation(world, session):
    good = world.run(at(OLD))
    bad = world.run(at(OLD))
    session.exec(
        delete(CreditLedgerEntry).where(CreditLedgerEntry.idempotency_key == settle_key(bad.id))
    )
    session.commit()
    check = store(session, world, OLD)
    assert check.status == "mismatch"
    assert [issue["generation"] for issue in check.issues] == [bad.public_id]
    assert "no settle entry" in check.issues[0]["problem"]
    # The hold was never closed: the ledger kept the whole hold, more than the metered charge.
    assert check.difference_millicredits == bad.held_millicredits - bad.charged_millicredits
    events = {e.generation_id: e.reconciled for e in session.exec(select(UsageEvent))}
    assert events == {good.id: True, bad.id: False}


def test_a_run_still_running_makes_its_day_pending(world, session):
    world.run(at(OLD))
    running = world.run(at(OLD, 11), finish=False)
    check = store(session, world, OLD)
    assert check.status == "pending"
    assert [item["generation"] for item in check.waiting] == [running.public_id]
    assert "still queued" in check.waiting[0]["reason"]


def test_a_day_younger_than_the_provider_window_is_pending(world, session):
    world.run(at(TODAY, 9))
    check = store(session, world, TODAY)
    assert check.status == "pending"
    assert any("provider usage may still arrive" in item["reason"] for item in check.waiting)


def test_provider_units_that_disagree_are_a_mismatch(world, session):
    run = world.run(at(OLD))
    event = session.exec(select(UsageEvent).where(UsageEvent.generation_id == run.id)).one()
    event.provider_units = event.units + 7
    session.add(event)
    session.commit()
    check = store(session, world, OLD)
    assert check.status == "mismatch"
    assert "provider reported" in check.issues[0]["problem"]


def test_a_paid_invoice_without_its_ledger_entry_is_a_payments_mismatch(world, session):
    session.add(
        Invoice(
            org_id=world.org.id,
            provider_invoice_id="in_paid",
            kind="subscription",
            status="paid",
            amount_cents=9900,
            credits=3000,
            created_at=at(OLD),
        )
    )
    session.commit()
    check = store(session, world, OLD)
    assert check.status == "mismatch"
    assert check.issues[0]["invoice"] == "in_paid" and check.issues[0]["source"] == "payments"
    credits.credits_grant(
        session=session,
        org_id=world.org.id,
        amount_millicredits=3000 * 1000,
        idempotency_key="invoice:in_paid:grant",
        reference="in_paid",
    )
    session.commit()
    assert store(session, world, OLD).status == "reconciled"


def test_the_job_checks_recent_days_and_rechecks_pending_ones(world, session, engine):
    world.run(at(TODAY - timedelta(days=1)))
    session.commit()  # the job writes from sessions of its own
    first = reconciliation.analytics_reconcile_recent(engine=engine, now=NOW)
    assert first.errors == 0 and first.items >= 1
    row = session.exec(select(ReconciliationDay)).one()
    assert row.status == "pending"  # within the provider window
    session.commit()
    later = NOW + timedelta(days=2)
    reconciliation.analytics_reconcile_recent(engine=engine, now=later)
    session.expire_all()
    row = session.exec(select(ReconciliationDay)).one()
    assert row.status == "reconciled"


def test_the_job_also_checks_older_days_with_usage_never_checked(world, session, engine):
    world.run(at(TODAY - timedelta(days=10)))
    session.commit()
    rollup.analytics_rollup_recent(engine=engine, now=NOW)
    reconciliation.analytics_reconcile_recent(engine=engine, now=NOW)
    row = session.exec(select(ReconciliationDay)).one()
    assert (row.day, row.status) == (TODAY - timedelta(days=10), "reconciled")
