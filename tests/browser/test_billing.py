"""Billing in the real app: an owner buys credits in local payment mode; a viewer reads only."""

from __future__ import annotations

import re

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot, sign_in


def _open_billing(page, base_url: str, email: str) -> None:
    # The dev server compiles pages and Vite may re-optimize dependencies (a full reload) on
    # the first visits; a click before hydration submits the form natively. Retry then.
    for attempt in range(3):
        page.goto(base_url + "/sign-in")
        page.wait_for_load_state("networkidle")
        sign_in(page, base_url, email, DEV_PASSWORD)
        try:
            page.wait_for_url(re.compile(r".*/org/acme/.*"), timeout=30_000)
            break
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
    page.goto(base_url + "/org/acme/billing")
    expect(page.get_by_role("heading", name="Billing", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Credits", exact=True)).to_be_visible()


def test_owner_buys_30_credits_in_local_payment_mode(app_server, page):
    base = app_server.base_url
    _open_billing(page, base, "owner@acme.test")
    expect(page.get_by_text("Local payment mode").first).to_be_visible()
    expect(page.get_by_role("group", name="Balance")).to_contain_text(
        "3,000"
    )  # seeded Growth grant
    expect(page.get_by_text("Credits are sold in blocks of 10")).to_be_visible()
    screenshot(page, "billing-owner")

    page.get_by_label("Number of blocks (10 credits each)").fill("3")
    expect(page.get_by_text("3 blocks × 10 credits = 30 credits for $3.00")).to_be_visible()
    page.get_by_role("button", name="Continue to checkout").click()

    page.wait_for_url(re.compile(r".*/org/acme/billing/local-checkout\?session=.*"))
    expect(page.get_by_text("Local payment mode — no real money moves")).to_be_visible()
    expect(page.get_by_role("heading", name="Buy 30 credits")).to_be_visible()
    expect(page.get_by_text("$3.00")).to_be_visible()
    screenshot(page, "billing-local-checkout")
    page.get_by_role("button", name="Confirm payment").click()

    page.wait_for_url(re.compile(r".*/org/acme/billing\?checkout=success"))
    expect(page.get_by_role("group", name="Balance")).to_contain_text("3,030")
    history = page.get_by_role("table").filter(has_text="Balance after")
    expect(history.get_by_role("row").filter(has_text="Purchase").first).to_contain_text("+30")
    expect(page.get_by_text("Credit top-up")).to_be_visible()  # the receipt row

    # ledger filter: only purchases
    page.get_by_label("Kind").select_option("purchase")
    page.get_by_role("button", name="Apply filters").click()
    expect(history.get_by_text("Monthly grant")).to_have_count(0)
    expect(history.get_by_text("Purchase")).to_have_count(1)
    screenshot(page, "billing-owner-after-top-up")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export CSV").click()
    csv_text = open(download_info.value.path()).read()
    assert csv_text.startswith("entry_id,") and ",purchase,30," in csv_text

    balance = app_server.run_python(
        "from sqlmodel import Session, select\n"
        "from core.db import get_engine\n"
        "from models import Organization\n"
        "from services import credits\n"
        "with Session(get_engine()) as s:\n"
        "    org = s.exec(select(Organization).where(Organization.slug == 'acme')).one()\n"
        "    print(credits.balance_get(session=s, org_id=org.id).balance, credits.ledger_sum(session=s, org_id=org.id))\n"
    )
    assert balance.split() == ["3030000", "3030000"]


def test_viewer_sees_billing_read_only(app_server, page):
    base = app_server.base_url
    _open_billing(page, base, "viewer@acme.test")
    expect(
        page.get_by_text("Only the organization owner can change billing.").first
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Credit history")).to_be_visible()
    expect(page.get_by_role("tab", name="Tools")).to_be_visible()
    for name in ("Continue to checkout", "Manage billing", "Save spend controls"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Upgrade to"))).to_have_count(0)
    page.get_by_role("tab", name="Tools").click()
    expect(page.get_by_role("columnheader", name="Credits per standard run")).to_be_visible()
    screenshot(page, "billing-viewer")
