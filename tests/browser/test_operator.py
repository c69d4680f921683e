"""An operator finds a customer by a member's email, refunds part of a failed run with a reason
(an amount above its price is refused first), and the owner sees the refund in Billing and in
the audit log, whose integrity verifies; screenshots at desktop and 375 px."""

import re

import pytest
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

FAILED_RUN = """
from core import db
from models import Generation, Organization, User
from sqlmodel import select
with db.session_scope() as session:
    org = session.exec(select(Organization).where(Organization.slug == "acme")).one()
    owner = session.exec(select(User).where(User.email == "owner@acme.test")).one()
    if not session.exec(select(Generation).where(Generation.public_id == "gen_optest1")).first():
        session.add(Generation(
            public_id="gen_optest1", org_id=org.id, user_id=owner.id, model_key="local-text",
            modality="text", prompt="Launch tagline", status="failed",
            estimate_millicredits=7000, failure_code="provider_error",
            failure_reason="The provider did not answer.",
            status_history=[{"status": "queued", "at": "2026-11-26T05:00:00+00:00"},
                            {"status": "failed", "at": "2026-11-26T05:15:00+00:00"}],
        ))
"""


def test_operator_refunds_a_failed_run_and_the_owner_sees_it(app_server, browser):
    app_server.run_python(FAILED_RUN)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, app_server.base_url, "operator@creative-studio.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/operator$|/orgs/new$|/org/"))
    page.goto(app_server.base_url + "/operator")
    expect(page.get_by_role("heading", name="Operator console", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Support queue")).to_have_attribute(
        "href", "/operator/support"
    )
    page.get_by_label("Slug, member email or Stripe customer id").fill("owner@acme.test")
    page.get_by_role("button", name="Search").click()
    results = page.get_by_role("table").first
    expect(results).to_contain_text("member owner@acme.test")
    screenshot(page, "operator-home")
    results.get_by_role("link", name="acme").click()

    expect(page).to_have_url(re.compile(r"/operator/customers/acme$"))
    expect(page.get_by_role("heading", name="Recent runs")).to_be_visible()
    page.get_by_role("button", name="Refund gen_optest1").click()
    expect(page.get_by_text("Refund 7 credits for gen_optest1")).to_be_visible()
    page.get_by_label("Credits to refund (optional)").fill("9")
    page.get_by_label("Reason (goes into the customer's audit log)").fill(
        "Provider outage on 26 Nov"
    )
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("alert").filter(has_text="9 credits is more than that")).to_be_visible()
    page.get_by_label("Credits to refund (optional)").fill("2.5")
    page.get_by_label("Reason (goes into the customer's audit log)").fill(
        "Provider outage on 26 Nov"
    )
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status").filter(has_text="Refunded 2.5 credits")).to_be_visible()
    expect(page.get_by_role("heading", name="Stop every running run")).to_be_visible()
    expect(page.get_by_role("button", name="Refund gen_optest1")).to_have_count(0)
    screenshot(page, "operator-customer")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "operator-customer-375")
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, app_server.base_url, "owner@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/"))
    page.goto(app_server.base_url + "/org/acme/billing")
    expect(
        page.get_by_text(re.compile(r"Partial refund of run gen_optest1 by Oscar Operator"))
    ).to_be_visible()
    page.get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(re.compile(r"/org/acme/audit$"))
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    entries = page.get_by_role("table")
    expect(entries).to_contain_text("credits.refunded")
    expect(entries).to_contain_text("Oscar Operator")
    page.get_by_role("button", name="Verify integrity").click()
    expect(page.get_by_text(re.compile(r"Integrity verified"))).to_be_visible()
    screenshot(page, "org-audit")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "org-audit-375")
    context.close()
