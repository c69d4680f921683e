"""Analytics in the browser: an admin sees KPIs, charts and reconciliation chips and opens a day;
a member gets the explanation; an operator gets the platform view. Screenshots desktop and 375 px.

The live server is shared: the usage below is added to the seeded organization `acme`
(real runs through the generation service, then the roll-up and reconciliation jobs).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 860}

_USAGE = """
from datetime import timedelta
from sqlmodel import Session, select
from core import clock
from core.clock import utcnow
from core.db import get_engine
from models import Organization, Project, User, UsageEvent
from services import generations
from services.analytics.reconciliation import analytics_reconcile_recent
from services.analytics.rollup import analytics_rollup_recent

with Session(get_engine(), expire_on_commit=False) as s:
    org = s.exec(select(Organization).where(Organization.slug == "acme")).one()
    editor = s.exec(select(User).where(User.email == "editor@acme.test")).one()
    project = s.exec(select(Project).where(Project.org_id == org.id)).first()
    now = utcnow()
    for days_ago, model in ((3, "local-text"), (2, "local-image"), (1, "local-text")):
        clock.freeze(now - timedelta(days=days_ago))
        g = generations.generation_start(session=s, user=editor, org_id=org.id,
            model_key=model, prompt="Spring sale banner", project_id=project.id)
        s.commit()
        generations.generation_run(session=s, generation_id=g.id)
    clock.freeze(None)
    s.add(UsageEvent(org_id=org.id, user_id=editor.id, source="assistant", model_key="local-text",
        modality="text", units=80, millicredits=400, provider_units=80,
        occurred_at=now - timedelta(days=1)))
    s.commit()
analytics_rollup_recent()
analytics_reconcile_recent()
print("ok")
"""


def _open(browser, app_server, email: str, path: str, viewport: dict):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(app_server.base_url + "/sign-in")
    page.wait_for_load_state("networkidle")
    try:
        expect(page.get_by_label("Email")).to_be_visible()
    except AssertionError:
        screenshot(page, "analytics-sign-in-failed")
        body = page.inner_text("body")[:500]
        raise AssertionError(f"sign-in page at {page.url}: {body}") from None
    sign_in(page, app_server.base_url, email, DEV_PASSWORD)
    expect(page).not_to_have_url(re.compile(r"/sign-in"))
    page.goto(app_server.base_url + path)
    return context, page


def test_an_admin_sees_kpis_charts_and_reconciliation_chips(app_server, browser):
    assert "ok" in app_server.run_python(_USAGE)
    for name, viewport in (("desktop", DESKTOP), ("375", PHONE)):
        context, page = _open(
            browser, app_server, "admin@acme.test", "/org/acme/analytics", viewport
        )
        try:
            expect(page.get_by_role("heading", name="Analytics", level=1)).to_be_visible()
            runs = page.get_by_role("group", name="Runs")
            expect(runs).to_contain_text(re.compile(r"\d"))
            expect(runs).to_contain_text("previous 30 days")
            expect(page.get_by_role("group", name="Credits used")).to_be_visible()
            expect(page.get_by_role("group", name="Assistant messages")).to_contain_text("1")
            expect(page.get_by_role("img", name="Credits per day by modality")).to_be_visible()
            expect(page.get_by_role("heading", name="By project")).to_be_visible()
            chips = page.get_by_role("heading", name="Reconciliation")
            expect(chips).to_be_visible()
            chip = page.get_by_role("button", name=re.compile(r": (Pending|Reconciled|Mismatch)$"))
            expect(chip.first).to_be_visible()
            chip.first.click()
            expect(page.get_by_text(re.compile(r"metered .* credits, ledger"))).to_be_visible()
            if name == "375":
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 375, f"the page scrolls sideways at 375 px ({width} px wide)"
            screenshot(page, f"analytics-admin-{name}")
        finally:
            context.close()


def test_scope_and_period_pickers_change_the_figures(app_server, browser):
    context, page = _open(browser, app_server, "owner@acme.test", "/org/acme/analytics", DESKTOP)
    try:
        expect(page.get_by_role("group", name="Runs")).to_be_visible()
        page.get_by_label("Scope", exact=True).click()
        page.get_by_role("option", name="Source").click()
        page.get_by_label("Showing").click()
        page.get_by_role("option", name="Competitor Intel").click()
        expect(page.get_by_role("heading", name="Why is this empty?")).to_be_visible()
        expect(page.get_by_text("Whole organization to see them")).to_be_visible()
        page.get_by_label("Period").click()
        page.get_by_role("option", name="Custom").click()
        page.get_by_label("From (UTC)").fill("2026-03-10")
        page.get_by_label("To (UTC)").fill("2026-03-01")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_role("alert")).to_contain_text("From day is after the To day")
        screenshot(page, "analytics-empty-checklist")
    finally:
        context.close()


def test_a_member_gets_the_explanation_and_an_operator_the_platform_view(app_server, browser):
    for name, viewport in (("desktop", DESKTOP), ("375", PHONE)):
        context, page = _open(
            browser, app_server, "editor@acme.test", "/org/acme/analytics", viewport
        )
        try:
            expect(
                page.get_by_role("heading", name="Analytics is for owners and admins")
            ).to_be_visible()
            expect(page.get_by_role("group", name="Runs")).to_have_count(0)
            screenshot(page, f"analytics-member-{name}")
        finally:
            context.close()
    context, page = _open(
        browser, app_server, "operator@creative-studio.test", "/operator/analytics", DESKTOP
    )
    try:
        expect(page.get_by_role("heading", name="Platform analytics", level=1)).to_be_visible()
        expect(page.get_by_role("img", name="Revenue by day")).to_be_visible()
        top = page.get_by_role("heading", name="Top organizations by credits")
        expect(top).to_be_visible()
        screenshot(page, "analytics-operator-platform")
    finally:
        context.close()
