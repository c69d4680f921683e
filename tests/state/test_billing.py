"""Billing and local checkout handlers, called as the browser calls them: what a person sees."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlmodel import Session, select

from models import CreditLedgerEntry, Organization, Project
from services import credits, orgs
from state.billing import BillingState, ReceiptState
from state.local_checkout import LocalCheckoutState
from state.org_page import NOT_FOUND_RELOAD
from tests.factories import add_member, make_org, make_user, signed_in_cookie

OWNER_ONLY = (
    "Only the organization owner can change billing. Ask your owner to make this change, "
    "or to transfer ownership to you."
)


@pytest.fixture
def acme(session):
    """Olivia owns Acme: one project, and the 50 credits a Free org gets when it is created."""
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    orgs.project_create(session=session, actor=owner, org_id=org.id, name="Spring launch")
    session.commit()
    return owner, org


def _project_id(session, org) -> int:
    return session.exec(select(Project.id).where(Project.org_id == org.id)).one()


def _billing(session, page_state, call, user, org, query: str = ""):
    cookie = signed_in_cookie(session, user)
    session.commit()
    state = page_state(BillingState, cookie=cookie, path=f"/org/{org.slug}/billing{query}")
    asyncio.run(call(state, "load"))
    return state


def _balance(engine, org_id: int) -> int:
    with Session(engine) as fresh:
        return credits.balance_get(session=fresh, org_id=org_id).balance


def _redirect_url(spec) -> str:
    """The path of an `rx.redirect(...)` a handler returned."""
    values = [json.loads(str(value)) for _name, value in spec.args]
    return next(v for v in values if isinstance(v, str) and v.startswith("/"))


def test_owner_sees_plan_balance_and_rates(session, engine, page_state, call, acme):
    owner, org = acme
    billing = _billing(session, page_state, call, owner, org, "?checkout=canceled")

    assert billing.loaded and billing.is_owner and billing.local_mode
    assert billing.error == ""
    assert billing.plan_name == "Free"
    assert billing.balance == "50" and billing.available == "50"
    assert billing.seats.startswith("1 of ")
    assert billing.text_rates and billing.tool_rates
    assert [(row.kind, row.amount) for row in billing.ledger] == [("Monthly grant", "+50")]
    assert billing.notice == "Checkout was canceled; nothing was charged."


def test_admin_reads_billing_but_every_change_is_refused(session, engine, page_state, call, acme):
    owner, org = acme
    admin = add_member(session, org, "adam@example.com", "admin", name="Adam Admin")
    project_id = _project_id(session, org)
    session.commit()
    before = _balance(engine, org.id)
    billing = _billing(session, page_state, call, admin, org)
    assert billing.loaded and not billing.is_owner
    assert billing.projects == []  # only the owner allocates pools

    assert asyncio.run(call(billing, "buy_credits", {"blocks": "3"})) is None
    assert billing.error == OWNER_ONLY
    asyncio.run(call(billing, "save_spend_controls", {"monthly_cap": "100"}))
    assert billing.error == OWNER_ONLY and billing.notice == ""
    asyncio.run(
        call(billing, "allocate_pool", {"project_id": str(project_id), "pool_credits": "10"})
    )
    assert billing.error == OWNER_ONLY
    assert asyncio.run(call(billing, "upgrade", "starter")) is None
    assert billing.error == OWNER_ONLY

    with Session(engine) as fresh:
        saved = fresh.get(Organization, org.id)
        assert saved.monthly_spend_cap_credits is None
        pool_entries = fresh.exec(
            select(CreditLedgerEntry).where(
                CreditLedgerEntry.org_id == org.id, CreditLedgerEntry.kind == "pool_allocate"
            )
        ).all()
    assert pool_entries == []
    assert _balance(engine, org.id) == before
    assert billing.cap == "" and billing.pools == [] and billing.balance == "50"


def test_malformed_ids_from_the_browser_say_not_found(session, page_state, call, acme):
    owner, org = acme
    billing = _billing(session, page_state, call, owner, org)

    asyncio.run(call(billing, "return_pool", "abc"))
    assert billing.error == NOT_FOUND_RELOAD
    asyncio.run(call(billing, "allocate_pool", {"project_id": "1; drop", "pool_credits": "5"}))
    assert billing.error == NOT_FOUND_RELOAD
    assert billing.loaded and billing.notice == ""


@pytest.mark.parametrize("blocks", ["-3", "lots", "0", "1.5"])
def test_invalid_top_up_blocks_get_the_services_message(session, page_state, call, acme, blocks):
    owner, org = acme
    billing = _billing(session, page_state, call, owner, org)

    assert asyncio.run(call(billing, "buy_credits", {"blocks": blocks})) is None
    assert billing.error.startswith("Enter a whole number of blocks from 1 to 1,000.")
    assert "blocks of 10" in billing.error


def test_owner_saves_spend_controls_and_pools_credits(session, engine, page_state, call, acme):
    owner, org = acme
    project_id = _project_id(session, org)
    billing = _billing(session, page_state, call, owner, org)

    asyncio.run(call(billing, "save_spend_controls", {"monthly_cap": "0"}))
    assert billing.error.startswith("A monthly spend cap of 0 would stop every run.")
    asyncio.run(
        call(billing, "save_spend_controls", {"monthly_cap": "400", "low_balance_alert": "5"})
    )
    assert billing.error == "" and billing.notice == "Spend controls saved."
    assert (billing.cap, billing.alert) == ("400", "5")

    asyncio.run(
        call(billing, "allocate_pool", {"project_id": str(project_id), "pool_credits": "10"})
    )
    assert billing.notice == "Credits set aside for the project."
    assert [pool.credits for pool in billing.pools] == ["10"]
    asyncio.run(call(billing, "return_pool", project_id))
    assert billing.notice == "Pooled credits returned to the general balance."
    assert billing.pools == []


def test_ledger_filters_refuse_malformed_and_reversed_days(session, page_state, call, acme):
    owner, org = acme
    billing = _billing(session, page_state, call, owner, org)
    shown = list(billing.ledger)

    asyncio.run(call(billing, "apply_filters", {"kind": "all", "since": "31/01/2026"}))
    assert billing.error == "Use a date like 2026-01-31."
    asyncio.run(
        call(
            billing, "apply_filters", {"kind": "all", "since": "2026-02-10", "until": "2026-02-01"}
        )
    )
    assert billing.error == (
        "The From date is after the To date. Pick a From date on or before the To date."
    )
    assert (billing.since, billing.until) == ("", "")  # the last valid filters stay
    assert billing.ledger == shown

    asyncio.run(call(billing, "apply_filters", {"kind": "purchase", "since": "", "until": ""}))
    assert billing.error == "" and billing._kind_filter == "purchase"
    assert billing.ledger == []  # no purchase yet
    asyncio.run(call(billing, "apply_filters", {"kind": "nonsense"}))
    assert billing._kind_filter == "all"


def test_scoped_editor_sees_only_its_projects_and_cannot_export(session, page_state, call, acme):
    owner, org = acme
    project_id = _project_id(session, org)
    other = orgs.project_create(session=session, actor=owner, org_id=org.id, name="Secret brief")
    editor = add_member(session, org, "eddie@example.com", "editor", project_ids=[project_id])
    session.commit()
    owner_billing = _billing(session, page_state, call, owner, org)
    for pool_project in (project_id, other.id):
        asyncio.run(
            call(owner_billing, "allocate_pool", {"project_id": pool_project, "pool_credits": "5"})
        )
    assert len(owner_billing.pools) == 2

    billing = _billing(session, page_state, call, editor, org)
    assert [pool.project_name for pool in billing.pools] == ["Spring launch"]
    assert [row.kind for row in billing.ledger].count("Pool allocation") == 1
    assert asyncio.run(call(billing, "export_csv")) is None
    assert billing.error.startswith("The ledger export covers every project")

    assert asyncio.run(call(owner_billing, "export_csv")) is not None
    assert owner_billing.error == ""


def test_owner_buys_credits_through_local_checkout(session, engine, page_state, call, acme):
    owner, org = acme
    before = _balance(engine, org.id)
    billing = _billing(session, page_state, call, owner, org)

    checkout_path = _redirect_url(asyncio.run(call(billing, "buy_credits", {"blocks": "3"})))
    assert checkout_path.startswith(f"/org/{org.slug}/billing/local-checkout?session=")

    cookie = signed_in_cookie(session, owner)
    session.commit()
    checkout = page_state(LocalCheckoutState, cookie=cookie, path=checkout_path)
    asyncio.run(call(checkout, "load"))
    assert checkout.error == "" and checkout.ready
    assert checkout.title == "Buy 30 credits" and checkout.amount == "$3.00"
    assert checkout.cancel_path == f"/org/{org.slug}/billing?checkout=canceled"

    done = asyncio.run(call(checkout, "confirm", {}))
    assert _redirect_url(done) == f"/org/{org.slug}/billing?checkout=success"
    assert _balance(engine, org.id) == before + 30_000

    billing = _billing(session, page_state, call, owner, org, "?checkout=success")
    assert billing.balance == "80"
    assert billing.notice.startswith("Payment confirmed.")
    assert billing.ledger[0].kind == "Purchase" and billing.ledger[0].amount == "+30"


def test_local_checkout_refuses_a_forged_link_and_a_non_owner(session, page_state, call, acme):
    owner, org = acme
    admin = add_member(session, org, "adam@example.com", "admin")
    cookie = signed_in_cookie(session, owner)
    session.commit()

    forged = page_state(
        LocalCheckoutState,
        cookie=cookie,
        path=f"/org/{org.slug}/billing/local-checkout?session=forged",
    )
    asyncio.run(call(forged, "load"))
    assert not forged.ready
    assert forged.error == "This checkout link is not valid. Start again from Billing."
    assert forged.cancel_path == f"/org/{org.slug}/billing?checkout=canceled"
    assert asyncio.run(call(forged, "confirm", {})) is None
    assert forged.error == "This checkout link is not valid. Start again from Billing."

    admin_cookie = signed_in_cookie(session, admin)
    session.commit()
    refused = page_state(
        LocalCheckoutState,
        cookie=admin_cookie,
        path=f"/org/{org.slug}/billing/local-checkout?session=forged",
    )
    asyncio.run(call(refused, "load"))
    assert not refused.ready and refused.error == OWNER_ONLY
    assert refused.cancel_path == f"/org/{org.slug}/billing?checkout=canceled"


def _local_checkout(session, page_state, call, owner, path):
    cookie = signed_in_cookie(session, owner)
    session.commit()
    checkout = page_state(LocalCheckoutState, cookie=cookie, path=path)
    asyncio.run(call(checkout, "load"))
    return checkout


def test_a_completed_checkout_says_so_instead_of_offering_to_pay_again(
    session, engine, page_state, call, acme
):
    owner, org = acme
    billing = _billing(session, page_state, call, owner, org)
    path = _redirect_url(asyncio.run(call(billing, "buy_credits", {"blocks": "2"})))
    checkout = _local_checkout(session, page_state, call, owner, path)
    assert checkout.completed == ""
    asyncio.run(call(checkout, "confirm", {}))

    again = _local_checkout(session, page_state, call, owner, path)
    assert again.ready and again.completed.endswith("UTC")
    assert again.title == "Credits bought"
    assert "20 credits were added for $2.00" in again.lines[0]
    assert again.billing_path == f"/org/{org.slug}/billing"

    # the invoice row links to a receipt page (local payment mode has no hosted invoice)
    billing = _billing(session, page_state, call, owner, org)
    receipt_url = billing.invoices[0].url
    assert receipt_url.startswith(f"/org/{org.slug}/billing/receipt?invoice=cs_local_")
    cookie = signed_in_cookie(session, owner)
    session.commit()
    receipt = page_state(ReceiptState, cookie=cookie, path=receipt_url)
    asyncio.run(call(receipt, "load"))
    assert receipt.ready and receipt.error == ""
    assert (receipt.amount, receipt.credits, receipt.kind) == ("$2.00", "20", "Credit top-up")
    assert receipt.local and receipt.status == "Paid"
    forged = page_state(
        ReceiptState, cookie=cookie, path=f"/org/{org.slug}/billing/receipt?invoice=in_other"
    )
    asyncio.run(call(forged, "load"))
    assert not forged.ready and forged.error.startswith("This receipt does not exist")


def test_saving_a_billing_profile_says_so_not_payment_confirmed(
    session, engine, page_state, call, acme
):
    owner, org = acme
    billing = _billing(session, page_state, call, owner, org)
    assert billing.billing_profile_required
    path = _redirect_url(asyncio.run(call(billing, "add_billing_profile")))
    checkout = _local_checkout(session, page_state, call, owner, path)
    done = asyncio.run(call(checkout, "confirm", {"billing_name": "Acme Ltd"}))
    assert _redirect_url(done) == f"/org/{org.slug}/billing?checkout=profile"

    billing = _billing(session, page_state, call, owner, org, "?checkout=profile")
    assert billing.notice.startswith("Billing profile saved; nothing was charged.")
    assert not billing.billing_profile_required and billing.balance == "50"


def test_owner_reads_the_charge_and_dates_before_a_plan_change(
    session, engine, page_state, call, acme
):
    owner, org = acme
    billing = _billing(session, page_state, call, owner, org)
    asyncio.run(call(billing, "upgrade", "starter"))
    assert billing.change_open and billing.change_title == "Subscribe to Starter"
    assert billing.change_lines[0] == "Charged now: $19.00 for the first month."
    checkout_path = _redirect_url(asyncio.run(call(billing, "confirm_plan_change")))
    checkout = _local_checkout(session, page_state, call, owner, checkout_path)
    asyncio.run(call(checkout, "confirm", {}))

    billing = _billing(session, page_state, call, owner, org)
    assert billing.plan_name == "Starter" and billing.balance == "550"
    growth = next(p for p in billing.plans if p.key == "growth")
    assert growth.action == "Upgrade to Growth" and growth.purchasable
    asyncio.run(call(billing, "upgrade", "growth"))
    assert billing.change_open and billing.change_title == "Upgrade to Growth"
    assert billing.change_lines[0].startswith("Charged now: $")
    assert billing.change_confirm.startswith("Pay $") and billing.balance == "550"
    asyncio.run(call(billing, "confirm_plan_change"))
    assert billing.error == "" and not billing.change_open
    assert billing.notice.startswith("Upgraded to Growth:")
    assert billing.plan_name == "Growth"

    asyncio.run(call(billing, "upgrade", "free"))
    assert billing.change_title == "Cancel the subscription"
    assert billing.change_confirm.startswith("Cancel: Free from ")
    asyncio.run(call(billing, "close_plan_change"))
    assert not billing.change_open and billing.scheduled_change == ""  # nothing changed

    asyncio.run(call(billing, "upgrade", "starter"))
    assert billing.change_lines[0] == "Charged now: nothing."
    asyncio.run(call(billing, "confirm_plan_change"))
    assert billing.scheduled_change.startswith("Starter from ")
    assert billing.plan_name == "Growth"
    keep = next(p for p in billing.plans if p.key == "growth")
    assert keep.action == "Keep Growth" and keep.purchasable
