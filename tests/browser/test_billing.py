"""Billing in the real app: an owner buys credits in local payment mode; a viewer reads only."""

from __future__ import annotations

import re

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from services.credits import format_credits
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


def _credits_shown(text: str) -> int:
    """The millicredits of a balance as the page shows it ("Balance 2,995.79 credits")."""
    number = re.search(r"[\d,]+(?:\.\d+)?", text).group(0).replace(",", "")
    whole, _, fraction = number.partition(".")
    return int(whole) * 1000 + int((fraction + "000")[:3])


def test_owner_buys_30_credits_in_local_payment_mode(app_server, page):
    base = app_server.base_url
    _open_billing(page, base, "owner@acme.test")
    expect(page.get_by_text("Local payment mode").first).to_be_visible()
    balance = page.get_by_role("group", name="Balance")
    expect(balance).to_contain_text(re.compile(r"\d"))  # the seeded Growth grant, less any runs
    before = _credits_shown(balance.inner_text())
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
    expect(balance).to_contain_text(format_credits(before + 30_000))
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
    assert balance.split() == [str(before + 30_000)] * 2  # the balance equals the ledger


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


def _dialog_screenshots(page, name: str) -> None:
    """The confirmation as the owner sees it, on a desktop and on a 375 px phone."""
    from tests.browser.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    size = page.viewport_size
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=str(SCREENSHOTS / f"{name}-375.png"))
    page.set_viewport_size(size)


def _choose(page, button: str, title: str):
    page.get_by_role("button", name=button, exact=True).click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name=title)).to_be_visible()
    return dialog


def test_new_free_org_runs_after_its_billing_profile_then_owner_changes_plans(app_server, page):
    base = app_server.base_url
    _open_billing(page, base, "owner@acme.test")
    page.goto(base + "/orgs/new")
    page.wait_for_load_state("networkidle")
    page.get_by_label("Organization name").fill("Plan Trial")
    page.get_by_role("button", name="Create organization").click()
    page.wait_for_url(re.compile(r".*/org/plan-trial(/.*)?$"))

    # A brand-new Free org has its first 50 credits at once; saving the profile says so.
    page.goto(base + "/org/plan-trial/billing")
    expect(page.get_by_role("group", name="Balance")).to_contain_text("50")
    page.get_by_role("button", name="Add billing profile").click()
    page.wait_for_url(re.compile(r".*/org/plan-trial/billing/local-checkout\?session=.*"))
    page.get_by_label("Name on the billing profile").fill("Plan Trial Ltd")
    page.get_by_role("button", name="Save billing profile").click()
    page.wait_for_url(re.compile(r".*/org/plan-trial/billing\?checkout=profile"))
    expect(page.get_by_text("Billing profile saved; nothing was charged.")).to_be_visible()
    expect(page.get_by_text("Payment confirmed")).to_have_count(0)

    # ... and the studio runs right away.
    page.goto(base + "/org/plan-trial/studio")
    page.get_by_role("button", name=re.compile(r"^Studio Local Text \d")).click()
    page.get_by_label("Prompt").fill("A welcome post for our new workspace")
    page.get_by_label("Prompt").blur()
    expect(page.locator("#run-estimate")).to_contain_text("About")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("[data-generation]").first).to_contain_text("succeeded", timeout=60_000)
    screenshot(page, "billing-new-free-org-runs")

    # Subscribe: the confirmation names the charge before checkout.
    page.goto(base + "/org/plan-trial/billing")
    dialog = _choose(page, "Upgrade to Starter", "Subscribe to Starter")
    expect(dialog).to_contain_text("Charged now: $19.00 for the first month.")
    dialog.get_by_role("button", name="Continue to checkout").click()
    page.wait_for_url(re.compile(r".*/local-checkout\?session=.*"))
    checkout_url = page.url
    page.get_by_role("button", name="Confirm payment").click()
    page.wait_for_url(re.compile(r".*/org/plan-trial/billing\?checkout=success"))
    expect(page.get_by_text("Renews on")).to_be_visible()

    # The paid checkout, opened again, says it was completed and offers no second payment.
    page.goto(checkout_url)
    expect(page.get_by_role("heading", name="Subscribed to Starter")).to_be_visible()
    expect(page.get_by_text(re.compile("This checkout was completed on"))).to_be_visible()
    expect(page.get_by_role("button", name="Confirm payment")).to_have_count(0)

    # Upgrade: only the prorated difference, the renewal date kept.
    page.goto(base + "/org/plan-trial/billing")
    dialog = _choose(page, "Upgrade to Growth", "Upgrade to Growth")
    expect(dialog).to_contain_text(re.compile(r"Charged now: \$(79\.9\d|80\.00), the difference"))
    expect(dialog).to_contain_text(re.compile(r"Credits: \+2,\d{3} now"))
    _dialog_screenshots(page, "billing-confirm-upgrade")
    dialog.get_by_role("button", name=re.compile(r"^Pay \$.* and upgrade$")).click()
    expect(page.get_by_text(re.compile(r"^Upgraded to Growth: \$"))).to_be_visible()
    expect(page.get_by_role("group", name="Balance")).to_contain_text(
        re.compile(r"3,0\d\d|2,9\d\d")
    )

    # Downgrade: nothing now, Starter from the end of the paid period.
    dialog = _choose(page, "Switch to Starter", "Switch to Starter")
    expect(dialog).to_contain_text("Charged now: nothing.")
    expect(dialog).to_contain_text(re.compile(r"Starter from \w+ \d+, \d{4}"))
    _dialog_screenshots(page, "billing-confirm-downgrade")
    dialog.get_by_role("button", name=re.compile(r"^Switch to Starter from ")).click()
    expect(page.get_by_role("status").filter(has_text="Starter from")).to_be_visible()

    # Cancel: back to Free at the end of the period, undoable until then.
    dialog = _choose(page, "Cancel subscription", "Cancel the subscription")
    expect(dialog).to_contain_text(re.compile(r"Free from \w+ \d+, \d{4}"))
    _dialog_screenshots(page, "billing-confirm-cancel")
    dialog.get_by_role("button", name=re.compile(r"^Cancel: Free from ")).click()
    expect(page.get_by_text(re.compile(r"^Subscription canceled: Free from "))).to_be_visible()
    expect(page.get_by_text("Ends on")).to_be_visible()
    screenshot(page, "billing-canceled")
    invoices = page.get_by_role("table").filter(has_text="Receipt")
    expect(invoices.get_by_role("row")).to_have_count(3)  # header, Starter, the upgrade
    receipt = invoices.get_by_role("link", name="View receipt").first  # the upgrade's
    expect(receipt).to_have_attribute(
        "href", re.compile(r"/org/plan-trial/billing/receipt\?invoice=in_local_")
    )
    page.goto(base + receipt.get_attribute("href"))
    expect(page.get_by_role("heading", name="Receipt", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^\$(79\.9\d|80\.00)$"))).to_be_visible()
    expect(
        page.get_by_text("Local payment mode — no real money moved.", exact=False)
    ).to_be_visible()
    screenshot(page, "billing-local-receipt")
