"""Analytics: roll-up, scoped queries, KPIs against the previous period, CSV, checklist, platform."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlmodel import delete, select

from core import clock
from jobs.definitions import JOB_IDS
from models import AnalyticsRollup, AnalyticsRollupWatermark, Invoice, UsageEvent
from services import policy
from services.analytics import checklist, export, platform, queries, rollup
from services.errors import NotFound, PermissionDenied, ValidationFailed
from tests.analytics_world import AnalyticsWorld
from tests.factories import make_user

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def at(days_ago: int, hour: int = 10) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), UTC).replace(
        hour=hour
    )


@pytest.fixture
def world(session) -> AnalyticsWorld:
    return AnalyticsWorld(session)


def actor(session, world, user=None):
    return policy.actor_for(session=session, user=user or world.admin, org_id=world.org.id)


def report(session, world, *, key="7d", scope=None, user=None, **custom):
    period = queries.period_resolve(
        session=session, org_id=world.org.id, key=key, now=NOW, **custom
    )
    return queries.analytics_report(
        session=session,
        actor=actor(session, world, user),
        org_id=world.org.id,
        scope=scope or queries.Scope(),
        period=period,
    )


def roll_up(session, *days_ago: int) -> None:
    for days in days_ago:
        rollup.analytics_rollup_day(session=session, day=TODAY - timedelta(days=days), now=NOW)
    session.commit()


def test_kpis_count_credits_runs_failures_refunds_messages_and_api_requests(world, session):
    ok = world.run(at(1))
    world.run(at(1), fail=True)
    world.run(at(2), project=world.autumn, user=world.admin, api_key=True)
    world.other_usage(at(3), source="assistant", millicredits=250)
    world.other_usage(at(3), source="assistant", millicredits=250)
    world.run(at(9))  # previous 7 days
    result = report(session, world)
    totals = result.totals
    assert totals.runs == 5
    assert totals.failures == 1 and totals.refunds == 1
    assert totals.assistant_messages == 2 and totals.api_requests == 1
    charged = sum(
        e.millicredits
        for e in session.exec(select(UsageEvent).where(UsageEvent.occurred_at >= at(6, 0)))
    )
    assert totals.millicredits == charged > ok.charged_millicredits
    assert result.previous.runs == 1
    by_project = {row.label: row.runs for row in result.by_project}
    assert by_project == {"Spring": 2, "Autumn": 1, "No project": 2}
    by_member = {row.label: row.runs for row in result.by_member}
    assert by_member == {"Erin Editor": 4, "Adam Admin": 1}
    assert {row.label for row in result.by_model} == {"Studio Local Text"}
    day = next(d for d in result.daily if d.day == TODAY - timedelta(days=3))
    assert day.millicredits_by_modality == {"text": 500}
    assert len(result.daily) == 7


def test_rolled_up_days_are_read_from_the_roll_up_not_the_events(world, session):
    world.run(at(2))
    world.run(at(1))
    roll_up(session, 2, 1)
    before = report(session, world).totals
    assert before.runs == 2
    # The raw events of covered days are no longer read: removing them changes nothing ...
    session.exec(delete(UsageEvent).where(UsageEvent.occurred_at < at(0, 0)))
    session.commit()
    assert report(session, world).totals == before
    # ... while events after a day's watermark (today) are added from the raw table.
    world.run(at(0, 11))
    assert report(session, world).totals.runs == 3


def test_a_day_rolled_up_twice_or_partly_counts_each_event_once(world, session):
    world.run(at(0, 9))
    roll_up(session, 0)  # today up to NOW - 1 minute
    roll_up(session, 0)
    mark = session.get(AnalyticsRollupWatermark, TODAY)
    assert mark.events == 1 and clock.as_utc(mark.rolled_through) == NOW - rollup.ROLLUP_LAG
    world.other_usage(NOW - timedelta(seconds=10), source="assistant")  # after the watermark
    totals = report(session, world, key="today").totals
    assert totals.runs == 2 and totals.assistant_messages == 1
    rows = session.exec(select(AnalyticsRollup)).all()
    assert sum(row.runs for row in rows) == 1


def test_the_job_catches_up_on_days_never_rolled_up(world, session, engine):
    world.run(at(5))
    world.run(at(1))
    result = rollup.analytics_rollup_recent(engine=engine, now=NOW)
    assert result.errors == 0 and result.items >= 3
    days = {row.day for row in session.exec(select(AnalyticsRollup))}
    assert days == {TODAY - timedelta(days=5), TODAY - timedelta(days=1)}
    assert "analytics_rollup" in JOB_IDS and "analytics_reconcile" in JOB_IDS


def test_scoped_queries_never_include_another_orgs_rows(world, session):
    other = AnalyticsWorld(session, slug="globex", name="Globex")
    world.run(at(1))
    other.run(at(1))
    other.run(at(1), project=other.autumn)
    roll_up(session, 1)
    other.run(at(0, 9))  # raw part too
    assert report(session, world).totals.runs == 1
    assert report(session, other).totals.runs == 3
    # A project of another organization is refused as a scope, not silently shown empty.
    with pytest.raises(ValidationFailed):
        queries.scope_resolve(
            session=session, org_id=world.org.id, kind="project", value=str(other.spring.id)
        )
    with pytest.raises(ValidationFailed):
        queries.scope_resolve(
            session=session, org_id=world.org.id, kind="member", value=str(other.editor.id)
        )
    # A member of both sees only this organization's usage under that scope.
    scope = queries.scope_resolve(
        session=session, org_id=other.org.id, kind="member", value=str(other.editor.id)
    )
    assert report(session, world, scope=scope).totals.runs == 0


@pytest.mark.parametrize(
    ("kind", "value", "runs"),
    [("project", "autumn", 1), ("member", "admin", 1), ("api_key", "key", 1), ("source", "api", 1)],
)
def test_each_scope_narrows_the_figures(world, session, kind, value, runs):
    world.run(at(1))
    world.run(at(1), project=world.autumn, user=world.admin, api_key=True)
    world.other_usage(at(1), source="assistant")
    roll_up(session, 1)
    ident = {
        "autumn": world.autumn.id,
        "admin": world.admin.id,
        "key": world.key.id,
        "api": "api",
    }[value]
    scope = queries.scope_resolve(session=session, org_id=world.org.id, kind=kind, value=str(ident))
    assert report(session, world, scope=scope).totals.runs == runs


def test_members_cannot_read_analytics_and_outsiders_do_not_see_it_exists(world, session):
    with pytest.raises(PermissionDenied):
        report(session, world, user=world.editor)
    stranger = make_user(session, "stranger@example.com")
    with pytest.raises((PermissionDenied, NotFound)):
        report(session, world, user=stranger)
    operator = make_user(session, "ops@creative-studio.test", operator=True)
    assert report(session, world, user=operator).totals.runs == 0


def test_periods_are_utc_days_and_bad_custom_ranges_say_how_to_fix_them(world, session):
    period = queries.period_resolve(session=session, org_id=world.org.id, key="30d", now=NOW)
    assert (period.first, period.last) == (TODAY - timedelta(days=29), TODAY)
    assert period.label.endswith("(UTC)")
    custom = queries.period_resolve(
        session=session,
        org_id=world.org.id,
        key="custom",
        custom_from="2026-11-01",
        custom_to="2026-11-03",
        now=NOW,
    )
    assert custom.day_count == 3 and custom.previous().last == date(2026, 10, 31)
    for start, end in (("2026-11-05", "2026-11-01"), ("yesterday", "2026-11-01")):
        with pytest.raises(ValidationFailed) as refused:
            queries.period_resolve(
                session=session,
                org_id=world.org.id,
                key="custom",
                custom_from=start,
                custom_to=end,
                now=NOW,
            )
        assert refused.value.code == "analytics_period_invalid"
        assert "Pick" in refused.value.message or "Use a date" in refused.value.message
    cycle = queries.period_resolve(session=session, org_id=world.org.id, key="cycle", now=NOW)
    assert cycle.last == TODAY and cycle.first <= TODAY


def test_csv_rows_sum_to_the_kpis_and_are_formula_safe(world, session):
    world.spring.name = '=HYPERLINK("http://evil")'
    session.add(world.spring)
    session.commit()
    world.run(at(2))
    world.run(at(1), fail=True)
    world.run(at(1), project=world.autumn, api_key=True)
    world.other_usage(at(1), source="assistant", millicredits=1234)
    roll_up(session, 2, 1)
    world.run(at(0, 9))
    result = report(session, world)
    period = result.period
    data = export.analytics_csv(
        session=session,
        actor=actor(session, world),
        org_id=world.org.id,
        scope=queries.Scope(),
        period=period,
    )
    rows = list(csv.DictReader(io.StringIO(data)))
    assert len(rows) == result.totals.runs == 5
    credits_sum = sum(Decimal(row["credits"]) for row in rows)
    assert credits_sum * 1000 == result.totals.millicredits
    assert sum(int(row["failed"]) for row in rows) == result.totals.failures
    assert sum(int(row["refunded"]) for row in rows) == result.totals.refunds
    assert all(row["occurred_at_utc"].endswith("+00:00") for row in rows)
    assert all(
        row["generation_id"].startswith("gen_") for row in rows if row["source"] != "assistant"
    )
    assert any(row["project"].startswith("'=") for row in rows)
    assert not any(row["project"].startswith("=") for row in rows)


def test_the_empty_checklist_names_what_to_fix(world, session):
    empty = report(session, world)
    items = {
        item.key: item
        for item in checklist.empty_checklist(
            session=session,
            org_id=world.org.id,
            org_slug=world.org.slug,
            scope=queries.Scope(),
            scope_label="Whole organization",
            report=empty,
            now=NOW,
        )
    }
    assert items["scope"].ok
    assert not items["rollup"].ok and "analytics_rollup" in items["rollup"].detail
    assert not items["runs"].ok and "Creative Studio" in items["runs"].detail
    # Usage in another project: the narrower scope is named as the reason.
    world.run(at(1), project=world.autumn)
    roll_up(session, 1)
    scope = queries.scope_resolve(
        session=session, org_id=world.org.id, kind="project", value=str(world.spring.id)
    )
    items = {
        item.key: item
        for item in checklist.empty_checklist(
            session=session,
            org_id=world.org.id,
            org_slug=world.org.slug,
            scope=scope,
            scope_label="Spring",
            report=report(session, world, scope=scope),
            now=NOW,
        )
    }
    assert not items["scope"].ok and "Whole organization" in items["scope"].detail
    assert items["period"].ok  # the organization's usage is in this period: the scope is why
    assert items["rollup"].ok
    today = report(session, world, key="today")
    items = {
        item.key: item
        for item in checklist.empty_checklist(
            session=session,
            org_id=world.org.id,
            org_slug=world.org.slug,
            scope=queries.Scope(),
            scope_label="Whole organization",
            report=today,
            now=NOW,
        )
    }
    assert not items["period"].ok and "pick a longer period" in items["period"].detail


def test_operators_see_top_orgs_and_revenue_by_day(world, session):
    other = AnalyticsWorld(session, slug="globex", name="Globex")
    world.run(at(1))
    other.run(at(1))
    other.run(at(1), fail=True)
    session.add(
        Invoice(
            org_id=other.org.id,
            provider_invoice_id="in_1",
            kind="subscription",
            status="paid",
            amount_cents=9900,
            credits=3000,
            created_at=at(2),
        )
    )
    session.commit()
    roll_up(session, 1)
    operator = make_user(session, "ops@creative-studio.test", operator=True)
    period = queries.period_resolve(session=session, org_id=world.org.id, key="7d", now=NOW)
    overview = platform.platform_overview(
        session=session,
        actor=policy.actor_for(session=session, user=operator, org_id=None),
        period=period,
    )
    assert overview.top_by_runs[0].slug == "globex"
    assert [row.slug for row in overview.top_by_failures] == ["globex"]
    assert overview.total_revenue_cents == 9900
    assert next(d for d in overview.revenue if d.day == TODAY - timedelta(days=2)).invoices == 1
    with pytest.raises(PermissionDenied):
        platform.platform_overview(
            session=session,
            actor=policy.actor_for(session=session, user=world.owner, org_id=None),
            period=period,
        )
