"""The Analytics page's handlers, called as the browser would (figures, scope, period, CSV)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from core.clock import utcnow
from services.analytics import reconciliation, rollup
from state.analytics import AnalyticsState, OperatorAnalyticsState
from tests.analytics_world import AnalyticsWorld
from tests.factories import make_user, signed_in_cookie


def _page(session, page_state, call, user, world):
    cookie = signed_in_cookie(session, user)
    state = page_state(AnalyticsState, cookie=cookie, path=f"/org/{world.org.slug}/analytics")
    asyncio.run(call(state, "load"))
    return state


def _usage(session, engine, world):
    now = utcnow()
    world.run(now - timedelta(days=3))
    world.run(now - timedelta(days=2), fail=True, project=world.autumn, user=world.admin)
    world.run(now - timedelta(days=1), api_key=True)
    world.other_usage(now - timedelta(days=1), source="assistant")
    session.commit()
    rollup.analytics_rollup_recent(engine=engine)
    reconciliation.analytics_reconcile_recent(engine=engine)


def test_an_admin_sees_kpis_charts_tables_and_chips(session, engine, page_state, call):
    world = AnalyticsWorld(session)
    _usage(session, engine, world)
    state = _page(session, page_state, call, world.admin, world)
    assert state.error == ""
    kpis = {kpi.label: kpi for kpi in state.kpis}
    assert kpis["Runs"].value == "4" and kpis["Failures"].value == "1"
    assert kpis["Assistant messages"].value == "1" and kpis["API requests"].value == "1"
    assert "previous 30 days" in kpis["Runs"].change
    assert not state.empty
    assert len(state.daily_chart) == 30 and set(state.daily_chart[0]) == {
        "day",
        "text",
        "image",
        "video",
    }
    assert {row.label for row in state.project_rows} >= {"Spring", "Autumn"}
    assert state.chips and {chip.status for chip in state.chips} <= {
        "pending",
        "reconciled",
        "mismatch",
        "unchecked",
    }
    asyncio.run(call(state, "open_reconciliation", state.chips[0].day))
    assert state.open_day == state.chips[0].day and state.open_day_summary


def test_scope_and_period_changes_are_checked_and_explained(session, engine, page_state, call):
    world = AnalyticsWorld(session)
    other = AnalyticsWorld(session, slug="globex", name="Globex")
    _usage(session, engine, world)
    state = _page(session, page_state, call, world.admin, world)
    asyncio.run(call(state, "set_scope_kind", "project"))
    assert state.scope_kind == "project" and state.scope_values
    autumn = next(c.value for c in state.scope_values if c.label == "Autumn")
    asyncio.run(call(state, "set_scope_value", autumn))
    assert {kpi.label: kpi.value for kpi in state.kpis}["Runs"] == "1"
    # Another organization's project: refused with the reason, the scope is unchanged.
    asyncio.run(call(state, "set_scope_value", str(other.spring.id)))
    assert "not part of this organization" in state.error and state.scope_value == autumn
    asyncio.run(call(state, "set_period", "forever"))
    assert "Pick one of the periods" in state.error
    asyncio.run(
        call(state, "apply_custom", {"custom_from": "2026-02-10", "custom_to": "2026-01-01"})
    )
    assert "From day is after the To day" in state.error and state.period == "30d"
    asyncio.run(call(state, "set_period", "today"))
    assert state.period == "today" and state.error == ""


def test_the_csv_has_the_rows_on_screen(session, engine, page_state, call):
    world = AnalyticsWorld(session)
    _usage(session, engine, world)
    state = _page(session, page_state, call, world.owner, world)
    download = asyncio.run(call(state, "export_csv"))
    assert download is not None and "acme-analytics-30d-org.csv" in str(download)
    assert state.error == ""


def test_members_get_nothing_and_operators_read_any_org(session, engine, page_state, call):
    world = AnalyticsWorld(session)
    _usage(session, engine, world)
    editor = _page(session, page_state, call, world.editor, world)
    assert editor.kpis == [] and editor.error
    asyncio.run(call(editor, "export_csv"))
    assert editor.kpis == []
    operator = make_user(session, "ops@creative-studio.test", operator=True)
    seen = _page(session, page_state, call, operator, world)
    assert seen.operator_view and {k.label: k.value for k in seen.kpis}["Runs"] == "4"
    cookie = signed_in_cookie(session, operator)
    platform = page_state(OperatorAnalyticsState, cookie=cookie, path="/operator/analytics")
    asyncio.run(call(platform, "load"))
    assert platform.allowed and platform.top_runs[0].name == "Acme Marketing"
    owner_platform = page_state(
        OperatorAnalyticsState,
        cookie=signed_in_cookie(session, world.owner),
        path="/operator/analytics",
    )
    asyncio.run(call(owner_platform, "load"))
    assert not owner_platform.allowed and owner_platform.top_runs == []
