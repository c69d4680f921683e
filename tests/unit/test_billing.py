"""Billing services and webhook fulfilment: idempotent, order-independent, signature-checked."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from core.settings import get_settings
from models import (
    CreditLedgerEntry,
    Invoice,
    Organization,
    ProcessedWebhookEvent,
    Subscription,
    User,
)
from services import billing, credits, orgs, policy
from services.errors import DomainError, PermissionDenied, ValidationFailed
from services.providers.payments import (
    LocalPaymentProvider,
    WebhookSignatureError,
    local_webhook_secret,
    payment_provider,
    signature_header,
)
from tests.factories import make_user

C = 1000
FIRST_GRANT = 50 * C  # a new Free org starts with its first monthly credits


@pytest.fixture
def acme(session):
    owner = make_user(session, "owner@b.test", "owner")
    viewer = make_user(session, "viewer@b.test", "viewer")
    org = orgs.org_create(session=session, owner=owner, name="Acme", slug="acme-b", plan_key="free")
    orgs.membership_add(
        session=session, org_id=org.id, user_id=viewer.id, role="viewer", actor_user_id=owner.id
    )
    org.stripe_customer_id = "cus_test_1"
    session.commit()
    return org, owner, viewer


def _event(event_id, event_type, obj, created=None):
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(created or time.time()),
        "data": {"object": obj},
    }


def _invoice(invoice_id="in_1", plan_key="growth", sub="sub_1", start=1_800_000_000):
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": "cus_test_1",
        "subscription": sub,
        "status": "paid",
        "amount_paid": 9900,
        "currency": "usd",
        "lines": {
            "data": [
                {
                    "metadata": {"plan_key": plan_key},
                    "period": {"start": start, "end": start + 2_592_000},
                }
            ]
        },
    }


def _checkout_sub(cs="cs_1", plan_key="growth", sub="sub_1"):
    return {
        "id": cs,
        "object": "checkout.session",
        "mode": "subscription",
        "payment_status": "paid",
        "customer": "cus_test_1",
        "metadata": {"purpose": "upgrade", "plan_key": plan_key, "org_id": "x"},
        "subscription": sub,
        "amount_total": 9900,
    }


def _checkout_top_up(cs="cs_top", credits_bought=30):
    return {
        "id": cs,
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "customer": "cus_test_1",
        "metadata": {
            "purpose": "top_up",
            "credits": str(credits_bought),
            "blocks": str(credits_bought // 10),
        },
        "amount_total": credits_bought * 10,
        "currency": "usd",
    }


def handle(engine, event):
    with Session(engine, expire_on_commit=False) as session:
        outcome = billing.webhook_handle(session=session, provider="stripe", event=event)
        session.commit()
        return outcome


def balance(engine, org_id):
    with Session(engine) as session:
        return credits.balance_get(session=session, org_id=org_id).balance


def subscription(engine, org_id) -> Subscription:
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(Subscription).where(Subscription.org_id == org_id)).one()


# --- webhook fulfilment ---------------------------------------------------------------------


def test_top_up_same_event_twice_credits_once(engine, acme):
    org, *_ = acme
    event = _event("evt_top", "checkout.session.completed", _checkout_top_up())
    assert handle(engine, event).effect == "credits_purchased"
    again = handle(engine, event)
    assert again.duplicate and again.effect == "duplicate"
    assert balance(engine, org.id) == FIRST_GRANT + 30 * C
    with Session(engine) as session:
        entries = session.exec(
            select(CreditLedgerEntry).where(
                CreditLedgerEntry.org_id == org.id, CreditLedgerEntry.kind == "purchase"
            )
        ).all()
        assert [(e.kind, e.amount_millicredits, e.idempotency_key) for e in entries] == [
            ("purchase", 30 * C, "checkout:cs_top:top_up")
        ]
        invoice = session.exec(select(Invoice)).one()
        assert (invoice.kind, invoice.status, invoice.credits) == ("top_up", "paid", 30)
        assert session.get(Organization, org.id).billing_profile_added_at is not None


def test_async_payment_succeeded_after_completed_grants_once(engine, acme):
    org, *_ = acme
    pending = _checkout_top_up("cs_async") | {"payment_status": "unpaid"}
    assert (
        handle(engine, _event("evt_a1", "checkout.session.completed", pending)).effect
        == "awaiting_payment"
    )
    assert balance(engine, org.id) == FIRST_GRANT
    paid = _checkout_top_up("cs_async")
    handle(engine, _event("evt_a2", "checkout.session.async_payment_succeeded", paid))
    handle(engine, _event("evt_a3", "checkout.session.completed", paid))  # a stray re-send
    assert balance(engine, org.id) == FIRST_GRANT + 30 * C


def test_invoice_paid_before_checkout_completed_grants_exactly_once(engine, acme):
    org, *_ = acme
    now = int(time.time())
    assert (
        handle(engine, _event("evt_inv", "invoice.paid", _invoice(), now)).effect
        == "monthly_credits_granted"
    )
    assert (
        handle(engine, _event("evt_cs", "checkout.session.completed", _checkout_sub(), now)).effect
        == "plan_changed"
    )
    # Stripe also sends invoice.payment_succeeded for the same invoice: a different event.
    handle(engine, _event("evt_inv2", "invoice.payment_succeeded", _invoice(), now))
    assert balance(engine, org.id) == FIRST_GRANT + 3000 * C
    sub = subscription(engine, org.id)
    assert (sub.plan_key, sub.status, sub.stripe_subscription_id) == ("growth", "active", "sub_1")
    assert sub.current_period_end is not None
    with Session(engine) as session:
        assert session.get(Organization, org.id).plan_key == "growth"
        assert session.exec(select(Invoice)).one().credits == 3000


def test_checkout_then_invoice_same_result(engine, acme):
    org, *_ = acme
    handle(engine, _event("evt_cs", "checkout.session.completed", _checkout_sub()))
    handle(engine, _event("evt_inv", "invoice.paid", _invoice()))
    assert balance(engine, org.id) == FIRST_GRANT + 3000 * C
    # next cycle: a new invoice grants again
    handle(engine, _event("evt_inv_b", "invoice.paid", _invoice("in_2", start=1_802_592_000)))
    assert balance(engine, org.id) == FIRST_GRANT + 6000 * C


def test_subscription_updated_older_than_last_event_is_ignored(engine, acme):
    org, *_ = acme
    t0 = int(time.time())
    handle(engine, _event("evt_cs", "checkout.session.completed", _checkout_sub(), t0))
    newer = {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_test_1",
        "status": "active",
        "metadata": {"plan_key": "scale"},
    }
    older = newer | {"status": "past_due", "metadata": {"plan_key": "starter"}}
    assert (
        handle(engine, _event("evt_new", "customer.subscription.updated", newer, t0 + 20)).effect
        == "subscription_updated"
    )
    assert (
        handle(engine, _event("evt_old", "customer.subscription.updated", older, t0 + 10)).effect
        == "ignored:stale"
    )
    sub = subscription(engine, org.id)
    assert (sub.plan_key, sub.status) == ("scale", "active")
    with Session(engine) as session:  # recorded even when ignored: a redelivery stays a no-op
        assert session.exec(
            select(ProcessedWebhookEvent).where(ProcessedWebhookEvent.event_id == "evt_old")
        ).one()


def test_payment_failed_then_deleted_locks_execution_read_stays(engine, acme):
    org, owner, viewer = acme
    t0 = int(time.time())
    handle(engine, _event("evt_cs", "checkout.session.completed", _checkout_sub(), t0))
    failed = _invoice("in_f") | {"status": "open", "amount_due": 9900}
    assert (
        handle(engine, _event("evt_f", "invoice.payment_failed", failed, t0 + 1)).effect
        == "past_due"
    )
    assert subscription(engine, org.id).status == "past_due"
    deleted = {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_test_1",
        "status": "canceled",
    }
    assert (
        handle(engine, _event("evt_d", "customer.subscription.deleted", deleted, t0 + 2)).effect
        == "subscription_expired"
    )
    assert subscription(engine, org.id).status == "expired"
    # a late invoice.paid (older) still grants what was paid for but does not revive the plan
    handle(engine, _event("evt_late", "invoice.paid", _invoice("in_late"), t0))
    assert subscription(engine, org.id).status == "expired"
    assert balance(engine, org.id) == FIRST_GRANT + 3000 * C
    with Session(engine) as session:
        actor = policy.actor_for(session=session, user=session.get(User, owner.id), org_id=org.id)
        target = policy.target_for(session=session, org_id=org.id)
        assert not policy.can(actor, policy.Action.tool_run, target).allowed
        assert policy.can(actor, policy.Action.billing_view, target).allowed
        assert policy.can(actor, policy.Action.billing_manage, target).allowed


def test_unpaid_status_expires(engine, acme):
    org, *_ = acme
    handle(engine, _event("evt_cs", "checkout.session.completed", _checkout_sub()))
    unpaid = {"id": "sub_1", "customer": "cus_test_1", "status": "unpaid"}
    handle(engine, _event("evt_u", "customer.subscription.updated", unpaid, time.time() + 5))
    assert subscription(engine, org.id).status == "expired"


def test_failed_effect_is_not_recorded_so_retry_applies(engine, acme, monkeypatch):
    org, *_ = acme
    event = _event("evt_boom", "checkout.session.completed", _checkout_top_up("cs_boom"))
    real = credits.credits_grant

    def boom(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(credits, "credits_grant", boom)
    with pytest.raises(RuntimeError), Session(engine) as session:
        billing.webhook_handle(session=session, provider="stripe", event=event)
    monkeypatch.setattr(credits, "credits_grant", real)
    assert handle(engine, event).effect == "credits_purchased"
    assert balance(engine, org.id) == FIRST_GRANT + 30 * C


def test_unknown_customer_is_recorded_and_ignored(engine, acme):
    obj = _checkout_top_up("cs_x") | {"customer": "cus_unknown"}
    assert (
        handle(engine, _event("evt_x", "checkout.session.completed", obj)).effect
        == "ignored:unknown_customer"
    )


def test_every_recorded_event_keeps_what_it_did(engine, acme):
    handle(engine, _event("evt_top", "checkout.session.completed", _checkout_top_up("cs_o")))
    handle(engine, _event("evt_other", "customer.created", {"id": "cus_new"}))
    lots = _checkout_top_up("cs_lots")
    lots["metadata"]["credits"] = "lots"
    handle(engine, _event("evt_lots", "checkout.session.completed", lots))
    with Session(engine) as session:
        outcomes = {
            row.event_id: row.outcome for row in session.exec(select(ProcessedWebhookEvent))
        }
    assert outcomes == {
        "evt_top": "credits_purchased",
        "evt_other": "ignored:unhandled_type",
        "evt_lots": "ignored:invalid_field: metadata.credits is 'lots', not a whole number",
    }


# --- signature verification -----------------------------------------------------------------


def _receive(payload: bytes, header: str):
    return billing.webhook_receive(
        payload=payload, signature_header=header, provider=LocalPaymentProvider(get_settings())
    )


def test_webhook_receive_verifies_signature_and_staleness(engine, acme):
    org, *_ = acme
    secret = local_webhook_secret()
    payload = json.dumps(
        _event("evt_sig", "checkout.session.completed", _checkout_top_up("cs_sig"))
    ).encode()
    with pytest.raises(WebhookSignatureError) as bad:
        _receive(payload, signature_header(payload, "whsec_wrong"))
    assert bad.value.code == "signature_invalid"
    with pytest.raises(WebhookSignatureError) as tampered:
        _receive(payload.replace(b"30", b"90"), signature_header(payload, secret))
    assert tampered.value.code == "signature_invalid"
    with pytest.raises(WebhookSignatureError) as stale:
        _receive(payload, signature_header(payload, secret, int(time.time()) - 3600))
    assert stale.value.code == "timestamp_stale"
    with pytest.raises(WebhookSignatureError):
        _receive(payload, "")
    assert balance(engine, org.id) == FIRST_GRANT  # refused events leave nothing behind...
    outcome = _receive(payload, signature_header(payload, secret))  # ...so the retry still credits
    assert outcome.effect == "credits_purchased" and balance(engine, org.id) == FIRST_GRANT + 30 * C
    assert _receive(payload, signature_header(payload, secret)).duplicate
    assert balance(engine, org.id) == FIRST_GRANT + 30 * C


def test_webhook_route_answers_json(engine, acme):
    from starlette.testclient import TestClient

    from creative_studio.api import build_api

    org, *_ = acme
    client = TestClient(build_api())
    payload = json.dumps(
        _event("evt_route", "checkout.session.completed", _checkout_top_up("cs_r"))
    ).encode()
    bad = client.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": "t=1,v1=abc"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] in (
        "signature_invalid",
        "timestamp_stale",
    )
    stale = client.post(
        "/webhooks/stripe",
        content=payload,
        headers={
            "Stripe-Signature": signature_header(
                payload, local_webhook_secret(), int(time.time()) - 999
            )
        },
    )
    assert stale.status_code == 400 and stale.json()["error"]["code"] == "timestamp_stale"
    header = {"Stripe-Signature": signature_header(payload, local_webhook_secret())}
    ok = client.post("/webhooks/stripe", content=payload, headers=header)
    assert ok.status_code == 200 and ok.json()["effect"] == "credits_purchased"
    again = client.post("/webhooks/stripe", content=payload, headers=header)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert balance(engine, org.id) == FIRST_GRANT + 30 * C


# --- local payment mode ---------------------------------------------------------------------


def test_local_top_up_goes_through_the_same_fulfilment(engine, acme):
    org, owner, _ = acme
    assert isinstance(payment_provider(), LocalPaymentProvider)
    with Session(engine, expire_on_commit=False) as session:
        checkout = billing.checkout_start(
            session=session,
            actor=session.get(User, owner.id),
            org_id=org.id,
            purpose="top_up",
            blocks="3",
            billing_url="http://app.test/org/acme-b/billing",
        )
        session.commit()
    assert checkout.url.startswith("/org/acme-b/billing/local-checkout?session=")
    token = checkout.url.split("session=", 1)[1]
    with Session(engine) as session:
        view = billing.local_checkout_view(
            session=session, actor=session.get(User, owner.id), org_id=org.id, token=token
        )
    assert view.title == "Buy 30 credits" and view.amount == "$3.00"
    outcomes = billing.local_checkout_confirm(actor_user_id=owner.id, org_id=org.id, token=token)
    assert [o.effect for o in outcomes] == ["credits_purchased"]
    again = billing.local_checkout_confirm(actor_user_id=owner.id, org_id=org.id, token=token)
    assert again[0].duplicate
    assert balance(engine, org.id) == FIRST_GRANT + 30 * C


def test_local_upgrade_changes_plan_and_grants_monthly_credits(engine, acme):
    org, owner, _ = acme
    with Session(engine, expire_on_commit=False) as session:
        checkout = billing.checkout_start(
            session=session,
            actor=session.get(User, owner.id),
            org_id=org.id,
            purpose="upgrade",
            plan_key="starter",
            billing_url="/org/acme-b/billing",
        )
        session.commit()
    token = checkout.url.split("session=", 1)[1]
    outcomes = billing.local_checkout_confirm(actor_user_id=owner.id, org_id=org.id, token=token)
    assert [o.effect for o in outcomes] == ["plan_changed", "monthly_credits_granted"]
    sub = subscription(engine, org.id)
    assert (sub.plan_key, sub.status) == ("starter", "active") and sub.current_period_end
    assert balance(engine, org.id) == FIRST_GRANT + 500 * C
    with Session(engine) as session:
        overview = billing.billing_overview(session=session, org_id=org.id)
    assert overview.plan_name == "Starter" and overview.renewal and len(overview.invoices) == 1


def test_local_checkout_token_checks(engine, acme):
    org, owner, viewer = acme
    with pytest.raises(ValidationFailed):
        billing.local_checkout_confirm(actor_user_id=owner.id, org_id=org.id, token="forged")
    with Session(engine, expire_on_commit=False) as session:
        checkout = billing.checkout_start(
            session=session,
            actor=session.get(User, owner.id),
            org_id=org.id,
            purpose="billing_profile",
            billing_url="/org/acme-b/billing",
        )
        session.commit()
    token = checkout.url.split("session=", 1)[1]
    with pytest.raises(PermissionDenied):
        billing.local_checkout_confirm(actor_user_id=viewer.id, org_id=org.id, token=token)
    with pytest.raises(ValidationFailed):
        billing.local_checkout_confirm(
            actor_user_id=owner.id, org_id=org.id, token=token, billing_name=" "
        )
    with Session(engine) as session:
        assert billing.billing_profile_required(session.get(Organization, org.id))
    billing.local_checkout_confirm(
        actor_user_id=owner.id, org_id=org.id, token=token, billing_name="Acme AP"
    )
    with Session(engine) as session:
        org_row = session.get(Organization, org.id)
        assert not billing.billing_profile_required(org_row)
        billing.billing_profile_require(org_row)


def test_billing_required_error(engine, acme):
    org, *_ = acme
    with Session(engine) as session:
        org_row = session.get(Organization, org.id)
        with pytest.raises(DomainError) as error:
            billing.billing_profile_require(org_row)
    assert error.value.code == "billing_required"
    assert "Add a billing profile in Billing before using models (Free plan)" in error.value.message


# --- owner-only mutations, validation -------------------------------------------------------


def test_only_owner_changes_billing(engine, acme):
    org, owner, viewer = acme
    with Session(engine) as session:
        v = session.get(User, viewer.id)
        for call in (
            lambda: billing.checkout_start(
                session=session,
                actor=v,
                org_id=org.id,
                purpose="top_up",
                blocks=1,
                billing_url="/b",
            ),
            lambda: billing.spend_controls_set(
                session=session,
                actor=v,
                org_id=org.id,
                monthly_cap_credits=10,
                low_balance_alert_credits=None,
            ),
            lambda: billing.portal_start(session=session, actor=v, org_id=org.id, return_url="/b"),
        ):
            with pytest.raises(PermissionDenied) as denied:
                call()
            assert "Only the organization owner" in denied.value.message


def test_top_up_quote_and_validation():
    assert billing.top_up_quote("3") == (3, 30, 300)
    for bad in ("0", "-1", "2.5", "abc", "", "1001"):
        with pytest.raises(ValidationFailed):
            billing.top_up_quote(bad)
    assert "blocks of 10" in billing.top_up_terms().describe()


def test_spend_controls(engine, acme):
    org, owner, _ = acme
    with Session(engine) as session:
        o = session.get(User, owner.id)
        billing.spend_controls_set(
            session=session,
            actor=o,
            org_id=org.id,
            monthly_cap_credits="1,500",
            low_balance_alert_credits="100",
        )
        session.commit()
        row = session.get(Organization, org.id)
        assert (row.monthly_spend_cap_credits, row.low_balance_alert_credits) == (1500, 100)
        for cap, alert in (("0", ""), ("-5", ""), ("1.5", ""), ("", "x"), ("99999999999", "")):
            with pytest.raises(ValidationFailed):
                billing.spend_controls_set(
                    session=session,
                    actor=o,
                    org_id=org.id,
                    monthly_cap_credits=cap,
                    low_balance_alert_credits=alert,
                )
        billing.spend_controls_set(
            session=session,
            actor=o,
            org_id=org.id,
            monthly_cap_credits="",
            low_balance_alert_credits=None,
        )
        assert row.monthly_spend_cap_credits is None
        overview = billing.billing_overview(session=session, org_id=org.id)
        assert overview.monthly_cap_credits is None


def test_portal_unavailable_locally(engine, acme):
    org, owner, _ = acme
    with Session(engine) as session:
        with pytest.raises(DomainError) as error:
            billing.portal_start(
                session=session, actor=session.get(User, owner.id), org_id=org.id, return_url="/b"
            )
    assert error.value.code == "portal_unavailable"


def test_pools_allocate_and_return(engine, acme):
    org, owner, viewer = acme
    with Session(engine) as session:
        o = session.get(User, owner.id)
        project = orgs.project_create(session=session, actor=o, org_id=org.id, name="Launch")
        credits.credits_grant(
            session=session, org_id=org.id, amount_millicredits=100 * C, idempotency_key="t"
        )
        billing.pool_allocate_credits(
            session=session,
            actor=o,
            org_id=org.id,
            project_id=project.id,
            credits_amount="40",
            request_id="r1",
        )
        billing.pool_allocate_credits(
            session=session,
            actor=o,
            org_id=org.id,
            project_id=project.id,
            credits_amount="40",
            request_id="r1",
        )  # retry
        session.commit()
        overview = billing.billing_overview(session=session, org_id=org.id)
        assert [(p.project_name, p.credits) for p in overview.pools] == [("Launch", "40")]
        with pytest.raises(PermissionDenied):
            billing.pool_return_credits(
                session=session,
                actor=session.get(User, viewer.id),
                org_id=org.id,
                project_id=project.id,
                request_id="r2",
            )
        with pytest.raises(ValidationFailed):
            billing.pool_allocate_credits(
                session=session,
                actor=o,
                org_id=org.id,
                project_id=99999,
                credits_amount="1",
                request_id="r3",
            )
        billing.pool_return_credits(
            session=session, actor=o, org_id=org.id, project_id=project.id, request_id="r4"
        )
        session.commit()
        assert credits.balance_get(session=session, org_id=org.id).pooled == 0


def test_overview_and_rates(engine, acme):
    org, *_ = acme
    with Session(engine) as session:
        credits.credits_grant(
            session=session, org_id=org.id, amount_millicredits=50 * C, idempotency_key="g"
        )
        credits.credits_hold(
            session=session, org_id=org.id, amount_millicredits=4 * C, idempotency_key="h"
        )
        session.commit()
    with Session(engine) as session:
        overview = billing.billing_overview(session=session, org_id=org.id)
        rates, tools = billing.credit_rates(session=session)
    assert overview.plan_name == "Free" and overview.billing_profile_required
    assert overview.seats_used == 2 and overview.seats_allowed == 2
    assert overview.usage_this_cycle_millicredits == 4 * C
    assert [p.key for p in overview.plans] == ["free", "starter", "growth", "scale"]
    assert {r.modality for r in rates} >= {"text", "image"} and tools
    assert all(t.credits for t in tools)


def test_event_time_parsing_is_utc():
    assert billing._ts(1_800_000_000) == datetime.fromtimestamp(1_800_000_000, UTC)
    assert billing._ts("bad") is None
