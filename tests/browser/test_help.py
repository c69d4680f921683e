"""Help center, status and support in the real app: a signed-out visitor searches, a person
reports a failed run from Studio History, and an operator answers it in the queue."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

GEN_ID = "gen_helpreport01"


def _failed_run(app_server) -> None:
    code = f"""
from sqlmodel import Session, select
from core.clock import utcnow
from core.db import get_engine
from models import Generation, Organization, User
with Session(get_engine()) as s:
    if s.exec(select(Generation).where(Generation.public_id == {GEN_ID!r})).first() is None:
        org = s.exec(select(Organization).where(Organization.slug == "acme")).one()
        user = s.exec(select(User).where(User.email == "editor@acme.test")).one()
        now = utcnow()
        s.add(Generation(
            public_id={GEN_ID!r}, org_id=org.id, user_id=user.id, model_key="local-image",
            tool_key="social-image", modality="image", prompt="Autumn sale banner",
            status="failed", failure_code="provider_error",
            failure_reason="The model provider failed; your credits were returned.",
            status_history=[{{"status": "queued", "at": now.isoformat()}},
                            {{"status": "failed", "at": now.isoformat()}}],
            created_at=now, started_at=now, finished_at=now,
        ))
        s.commit()
"""
    app_server.run_python(code)


def test_a_signed_out_visitor_searches_the_help_center(app_server, page):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(app_server.base_url + "/help")
    expect(page.get_by_role("heading", name="Help center", level=1)).to_be_visible()
    # The index has loaded, so the page is hydrated: a query typed before that would be reset
    # by hydration and the search would list everything.
    expect(page.get_by_role("status").filter(has_text="resources found")).to_be_visible()
    page.get_by_label("Search the help center").fill("billing required")
    page.get_by_role("button", name="Search").click()
    first = page.get_by_role("heading", level=3).first
    expect(first).to_have_text("Runbook: billing required")
    expect(page.locator("mark").first).to_be_visible()
    screenshot(page, "help-search")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "help-search-375")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="Runbook: billing required").click()
    expect(page).to_have_url(re.compile(r"/help/billing-required$"))
    for section in ("Checks", "Fix steps", "Escalation"):
        expect(page.get_by_role("heading", name=section)).to_be_visible()
    screenshot(page, "help-article")

    page.goto(app_server.base_url + "/help/model-credit-rates")
    page.get_by_role("tab", name="Image").click()
    expect(page.get_by_role("cell", name=re.compile(r"credits? per image")).first).to_be_visible()

    page.goto(app_server.base_url + "/status")
    expect(page.get_by_role("heading", name="Platform status", level=1)).to_be_visible()
    expect(page.get_by_text("Background jobs")).to_be_visible()
    screenshot(page, "status")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "status-375")


def test_report_a_failed_run_and_an_operator_answers(app_server, page, browser):
    _failed_run(app_server)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, app_server.base_url, "editor@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    report = page.get_by_role("link", name=f"Report {GEN_ID} to support")
    report.click()
    expect(page).to_have_url(re.compile(r"/org/acme/help/support\?generation_id=" + GEN_ID))
    expect(page.get_by_label("Generation ID")).to_have_value(GEN_ID)
    expect(page.get_by_label("Error code")).to_have_value("provider_error")
    expect(page.get_by_label("Model")).to_have_value("local-image")
    expect(page.get_by_label("Subject")).to_have_value(f"Run {GEN_ID} failed")
    expect(page.get_by_role("region", name="Suggested articles")).to_be_visible()
    page.get_by_label("What happened").fill("The banner never appeared.")
    screenshot(page, "support-form")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "support-form-375")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name="Send to support").click()
    expect(page.get_by_text(re.compile(r"Ticket #\d+ was sent"))).to_be_visible()

    operator_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        operator = operator_context.new_page()
        sign_in(operator, app_server.base_url, "operator@creative-studio.test", DEV_PASSWORD)
        expect(operator).not_to_have_url(re.compile(r"/sign-in"))
        operator.goto(app_server.base_url + "/operator/support")
        expect(operator.get_by_role("heading", name="Support queue")).to_be_visible()
        operator.get_by_role("button", name=re.compile(f"Run {GEN_ID} failed")).first.click()
        expect(operator.get_by_text(GEN_ID).first).to_be_visible()
        expect(operator.get_by_role("heading", name="Ledger entries")).to_be_visible()
        operator.get_by_label("Reply to the customer (mailed)").fill(
            "Sorry: the image provider failed for a few minutes. Your credits are back; "
            "retry the run."
        )
        operator.get_by_role("button", name="Send reply").click()
        expect(operator.get_by_text("Reply sent by mail")).to_be_visible()
        screenshot(operator, "operator-support")
        operator.set_viewport_size({"width": 375, "height": 800})
        screenshot(operator, "operator-support-375")
    finally:
        operator_context.close()

    page.goto(app_server.base_url + "/org/acme/help/tickets")
    expect(page.get_by_role("heading", name="My tickets", level=1)).to_be_visible()
    row = page.get_by_role("row").filter(has_text=f"Run {GEN_ID} failed")
    expect(row).to_contain_text("Waiting on customer")
    row.get_by_role("button", name=f"Open ticket Run {GEN_ID} failed").click()
    expect(page.get_by_text("Your credits are back")).to_be_visible()
    expect(page.get_by_text("Waiting on customer").first).to_be_visible()
    screenshot(page, "my-tickets")
