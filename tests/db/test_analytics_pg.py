"""Analytics on PostgreSQL: roll-up and raw parts agree, scopes stay inside their organization,
reconciliation names the generation that disagrees, and two job processes at once are safe."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlmodel import Session, delete, func, select

from models import AnalyticsRollup, CreditLedgerEntry, ReconciliationDay, UsageEvent
from services import policy
from services.analytics import export, queries, reconciliation, rollup
from services.errors import ValidationFailed
from services.generation_keys import settle_key
from tests.analytics_world import AnalyticsWorld

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def at(days_ago: int, hour: int = 10) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), UTC).replace(
        hour=hour
    )


@pytest.fixture
def session(pg_engine):
    with Session(pg_engine, expire_on_commit=False) as session:
        yield session


def _report(session, world, scope=None):
    period = queries.period_resolve(session=session, org_id=world.org.id, key="7d", now=NOW)
    return queries.analytics_report(
        session=session,
        actor=policy.actor_for(session=session, user=world.admin, org_id=world.org.id),
        org_id=world.org.id,
        scope=scope or queries.Scope(),
        period=period,
    )


def test_roll_up_plus_raw_tail_equals_the_events_and_stays_in_its_org(pg_engine, session):
    acme = AnalyticsWorld(session)
    globex = AnalyticsWorld(session, slug="globex", name="Globex")
    acme.run(at(2, 23))  # late in the UTC day: the day boundary is UTC whatever the server zone
    acme.run(at(1), fail=True, project=acme.autumn)
    globex.run(at(1))
    globex.run(at(1), api_key=True)
    acme.run(at(9))  # the previous 7 days
    session.commit()
    rollup.analytics_rollup_recent(engine=pg_engine, now=NOW)
    acme.run(NOW - timedelta(seconds=30))  # after today's watermark: read raw
    acme.other_usage(NOW - timedelta(seconds=20), source="assistant")
    session.commit()

    def events() -> tuple[int, int]:
        count, total = session.exec(
            select(func.count(), func.sum(UsageEvent.millicredits)).where(
                UsageEvent.org_id == acme.org.id, UsageEvent.occurred_at >= at(6, 0)
            )
        ).one()
        return int(count), int(total)

    report = _report(session, acme)
    assert (report.totals.runs, report.totals.millicredits) == events()
    # A surface that stamps its usage with an earlier time than it commits it (before the
    # watermark) is counted by the next roll-up, which recomputes today and yesterday.
    acme.other_usage(at(0, 9), source="intel", millicredits=700)
    session.commit()
    rollup.analytics_rollup_recent(engine=pg_engine, now=NOW)
    report = _report(session, acme)
    assert (report.totals.runs, report.totals.millicredits) == events()
    assert report.totals.failures == 1 and report.totals.assistant_messages == 1
    assert report.previous.runs == 1 and report.previous.failures == 0
    day = next(d for d in report.daily if d.day == TODAY - timedelta(days=2))
    assert day.runs == 1
    assert _report(session, globex).totals.runs == 2
    key_scope = queries.scope_resolve(
        session=session, org_id=globex.org.id, kind="api_key", value=str(globex.key.id)
    )
    assert _report(session, globex, key_scope).totals.runs == 1
    # The key of another organization names nothing here.
    with pytest.raises(ValidationFailed):
        queries.scope_resolve(
            session=session, org_id=acme.org.id, kind="api_key", value=str(globex.key.id)
        )


def test_csv_rows_sum_to_the_kpis(pg_engine, session):
    acme = AnalyticsWorld(session)
    for days_ago in (3, 2, 1):
        acme.run(at(days_ago))
    acme.run(at(1), fail=True)
    session.commit()
    rollup.analytics_rollup_recent(engine=pg_engine, now=NOW)
    report = _report(session, acme)
    data = export.analytics_csv(
        session=session,
        actor=policy.actor_for(session=session, user=acme.owner, org_id=acme.org.id),
        org_id=acme.org.id,
        scope=queries.Scope(),
        period=report.period,
    )
    rows = list(csv.DictReader(io.StringIO(data)))
    assert len(rows) == report.totals.runs == 4
    assert sum(Decimal(r["credits"]) for r in rows) * 1000 == report.totals.millicredits
    assert sum(int(r["failed"]) for r in rows) == report.totals.failures == 1


def test_a_deleted_settle_is_a_mismatch_and_a_running_run_is_pending(pg_engine, session):
    acme = AnalyticsWorld(session)
    old = TODAY - timedelta(days=4)
    ok = acme.run(at(4))
    bad = acme.run(at(4, 11))
    session.exec(
        delete(CreditLedgerEntry).where(CreditLedgerEntry.idempotency_key == settle_key(bad.id))
    )
    running = acme.run(at(5), finish=False)
    acme.run(at(5))
    session.commit()
    reconciliation.analytics_reconcile_recent(engine=pg_engine, now=NOW)  # recent days only
    for day in (old, old - timedelta(days=1)):
        with Session(pg_engine) as own:
            reconciliation.reconciliation_day_store(
                session=own, org_id=acme.org.id, day=day, now=NOW
            )
            own.commit()
    rows = {
        row.day: row
        for row in session.exec(
            select(ReconciliationDay).where(ReconciliationDay.org_id == acme.org.id)
        )
    }
    mismatch = rows[old]
    assert mismatch.status == "mismatch"
    assert [issue["generation"] for issue in mismatch.issues] == [bad.public_id]
    assert mismatch.difference_millicredits == bad.held_millicredits - bad.charged_millicredits
    pending = rows[old - timedelta(days=1)]
    assert pending.status == "pending"
    assert [w["generation"] for w in pending.waiting] == [running.public_id]
    reconciled = dict(
        session.exec(
            select(UsageEvent.generation_id, UsageEvent.reconciled).where(
                UsageEvent.org_id == acme.org.id
            )
        ).all()
    )
    assert reconciled[ok.id] is True and reconciled[bad.id] is False


def test_two_processes_rolling_up_and_reconciling_at_once_agree(pg_engine, session):
    acme = AnalyticsWorld(session)
    for index in range(6):
        acme.run(at(index % 2), fail=index == 3)
    session.commit()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def job(work):
        try:
            barrier.wait()
            result = work(engine=pg_engine, now=NOW)
            assert result.errors == 0, result.error_details
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=job, args=(work,))
        for work in (
            rollup.analytics_rollup_recent,
            rollup.analytics_rollup_recent,
            reconciliation.analytics_reconcile_recent,
            reconciliation.analytics_reconcile_recent,
        )
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    runs = session.exec(select(func.sum(AnalyticsRollup.runs))).one()
    assert runs == 6
    days = session.exec(
        select(ReconciliationDay.day, func.count()).group_by(ReconciliationDay.day)
    ).all()
    assert all(count == 1 for _, count in days) and len(days) == 2
