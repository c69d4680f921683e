"""Validly signed payment events that cannot be applied: answered without 500, nothing applied.

Stripe retries every non-2xx answer for days, so an event whose content can never be applied
(a field of the wrong shape, a missing id, a subscription of another organization) is
recorded as ignored with its reason and answered 200; a signed body that is not an event at
all is answered 400. Either way no credit, plan, invoice or subscription changes.

Events go through the real route (`POST /webhooks/stripe`) with a real signature (the local
payment mode's secret, verified exactly as Stripe's).
"""

from __future__ import annotations

import json
import time

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from creative_studio.api import build_api
from models import CreditLedgerEntry, Invoice, Organization, ProcessedWebhookEvent, Subscription
from services import credits
from services.providers.payments import local_webhook_secret, signature_header
from tests.factories import make_org, make_user

ROUTE = "/webhooks/stripe"


@pytest.fixture
def client(engine) -> TestClient:
    # Server errors become 500 answers, as a deployed server gives them.
    return TestClient(build_api(), raise_server_exceptions=False)


@pytest.fixture
def orgs(engine):
    """Acme (customer cus_acme, subscription sub_acme) and Rival (cus_rival, sub_rival)."""
    with Session(engine, expire_on_commit=False) as session:
        acme = make_org(session, make_user(session, "owner@acme.test"), "Acme", slug="acme")
        rival = make_org(session, make_user(session, "owner@rival.test"), "Rival", slug="rival")
        for org, name in ((acme, "acme"), (rival, "rival")):
            org.stripe_customer_id = f"cus_{name}"
            session.add(org)
            subscription = session.exec(
                select(Subscription).where(Subscription.org_id == org.id)
            ).one()
            subscription.stripe_subscription_id = f"sub_{name}"
            subscription.plan_key = org.plan_key = "starter"
            session.add(subscription)
        session.commit()
    return acme, rival


def post(client: TestClient, body) -> object:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    header = signature_header(payload, local_webhook_secret())
    return client.post(ROUTE, content=payload, headers={"Stripe-Signature": header})


def event(event_id: str, event_type: str, obj) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def top_up(**changes) -> dict:
    return {
        "id": "cs_top_up",
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "customer": "cus_acme",
        "metadata": {"purpose": "top_up", "credits": "30", "blocks": "3"},
        "amount_total": 300,
        "currency": "usd",
    } | changes


def invoice(**changes) -> dict:
    return {
        "id": "in_acme_1",
        "object": "invoice",
        "customer": "cus_acme",
        "subscription": "sub_acme",
        "amount_paid": 9900,
        "currency": "usd",
        "lines": {
            "data": [
                {
                    "metadata": {"plan_key": "growth"},
                    "period": {"start": 1_800_000_000, "end": 1_802_592_000},
                }
            ]
        },
    } | changes


def snapshot(engine) -> dict:
    """Everything a payment event could change, for both organizations."""
    with Session(engine) as session:
        return {
            "orgs": sorted(
                (o.slug, o.plan_key, o.stripe_customer_id, o.billing_profile_added_at)
                for o in session.exec(select(Organization))
            ),
            "subscriptions": sorted(
                (s.org_id, s.plan_key, s.status, s.stripe_subscription_id, s.current_period_end)
                for s in session.exec(select(Subscription))
            ),
            "ledger": len(session.exec(select(CreditLedgerEntry)).all()),
            "balances": sorted(
                credits.balance_get(session=session, org_id=o.id).balance
                for o in session.exec(select(Organization))
            ),
            "invoices": len(session.exec(select(Invoice)).all()),
        }


def recorded(engine, event_id: str) -> ProcessedWebhookEvent | None:
    with Session(engine) as session:
        return session.exec(
            select(ProcessedWebhookEvent).where(ProcessedWebhookEvent.event_id == event_id)
        ).first()


# (name, event type, data.object, words the recorded reason must contain)
UNAPPLICABLE = [
    (
        "credits that are not a number",
        "checkout.session.completed",
        top_up(metadata={"purpose": "top_up", "credits": "lots", "blocks": "3"}),
        "metadata.credits is 'lots'",
    ),
    (
        "credits beyond any column",
        "checkout.session.completed",
        top_up(metadata={"purpose": "top_up", "credits": "9" * 30}),
        "too large",
    ),
    (
        "an amount that is not a number",
        "checkout.session.completed",
        top_up(amount_total="a lot"),
        "amount_total",
    ),
    (
        "a checkout without its id",
        "checkout.session.completed",
        top_up(id=None),
        "the id is missing",
    ),
    (
        "metadata that is a list",
        "checkout.session.completed",
        top_up(metadata=["purpose", "top_up"]),
        "metadata is not an object",
    ),
    (
        "a customer that is not an id",
        "checkout.session.completed",
        top_up(customer={"id": 42}),
        "customer is 42",
    ),
    (
        "an upgrade to another organization's subscription",
        "checkout.session.completed",
        top_up(
            mode="subscription",
            metadata={"purpose": "upgrade", "plan_key": "scale"},
            subscription="sub_rival",
        ),
        "sub_rival belongs to another organization",
    ),
    (
        "an invoice of another organization's subscription",
        "invoice.paid",
        invoice(subscription="sub_rival"),
        "sub_rival belongs to another organization",
    ),
    (
        "a failed invoice of another organization's subscription",
        "invoice.payment_failed",
        invoice(subscription="sub_rival"),
        "sub_rival belongs to another organization",
    ),
    (
        "another organization's subscription cancelled through this customer",
        "customer.subscription.deleted",
        {"id": "sub_rival", "customer": "cus_acme", "status": "canceled"},
        "sub_rival belongs to another organization",
    ),
    (
        "another organization's subscription updated through this customer",
        "customer.subscription.updated",
        {"id": "sub_rival", "customer": "cus_acme", "status": "active"},
        "sub_rival belongs to another organization",
    ),
    ("an invoice without its id", "invoice.paid", invoice(id=None), "the id is missing"),
    ("invoice lines that are text", "invoice.paid", invoice(lines="many"), "lines"),
    ("a currency that is not a code", "invoice.paid", invoice(currency="dollars"), "currency"),
    (
        "a subscription without its id",
        "customer.subscription.updated",
        {"customer": "cus_acme", "status": "canceled"},
        "the id is missing",
    ),
    ("an event without its object", "invoice.paid", None, "data.object is missing"),
    ("an object that is a list", "invoice.paid", [invoice()], "data.object is not an object"),
    ("text with a NUL character", "invoice.paid", invoice(currency="us\x00d"), "NUL"),
]


@pytest.mark.parametrize(
    ("event_type", "obj", "reason"),
    [case[1:] for case in UNAPPLICABLE],
    ids=[case[0] for case in UNAPPLICABLE],
)
def test_a_signed_event_that_cannot_be_applied_is_recorded_as_ignored(
    engine, client, orgs, event_type, obj, reason
):
    before = snapshot(engine)
    answer = post(client, event("evt_bad", event_type, obj))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["effect"].startswith("ignored:") and reason in body["effect"]
    assert snapshot(engine) == before  # no credit, plan, subscription or invoice changed
    row = recorded(engine, "evt_bad")
    assert row is not None and row.outcome == body["effect"]
    # Stripe's retry of the same event is a duplicate and still changes nothing.
    again = post(client, event("evt_bad", event_type, obj))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    "body",
    [
        [{"id": "evt_1", "type": "invoice.paid"}],
        "invoice.paid",
        42,
        None,
        {"type": "invoice.paid", "data": {"object": {}}},
        {"id": "evt_no_type", "data": {"object": {}}},
        {"id": {"nested": "evt"}, "type": "invoice.paid"},
        {"id": "evt_" + "x" * 300, "type": "invoice.paid"},
        {"id": "evt_long_type", "type": "x" * 200},
    ],
    ids=[
        "a JSON array",
        "a JSON string",
        "a number",
        "null",
        "no id",
        "no type",
        "an id that is an object",
        "an id longer than any Stripe id",
        "a type longer than any Stripe type",
    ],
)
def test_a_signed_body_that_is_not_an_event_is_refused_with_400(engine, client, orgs, body):
    before = snapshot(engine)
    answer = post(client, body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "webhook_not_an_event" and "nothing was applied" in error["message"]
    assert snapshot(engine) == before
    with Session(engine) as session:
        assert session.exec(select(ProcessedWebhookEvent)).all() == []


def test_signed_bytes_that_are_not_json_are_refused_with_400(engine, client, orgs):
    for payload in (b"{not json", b"\xff\xfe not utf-8", b"[" * 5000 + b"]" * 5000):
        answer = post(client, payload)
        assert answer.status_code == 400, (payload[:10], answer.text)


def test_well_formed_events_still_apply_beside_the_ignored_ones(engine, client, orgs):
    acme, rival = orgs
    assert (
        post(
            client,
            event(
                "evt_lots",
                "checkout.session.completed",
                top_up(metadata={"purpose": "top_up", "credits": "lots"}),
            ),
        )
        .json()["effect"]
        .startswith("ignored:")
    )
    good = post(client, event("evt_good", "checkout.session.completed", top_up(id="cs_good")))
    assert good.status_code == 200 and good.json()["effect"] == "credits_purchased"
    paid = post(client, event("evt_paid", "invoice.paid", invoice()))
    assert paid.json()["effect"] == "monthly_credits_granted"
    with Session(engine) as session:
        # each org started with Free's first 50 credits when it was created
        assert credits.balance_get(session=session, org_id=acme.id).balance == 3_080_000
        assert credits.balance_get(session=session, org_id=rival.id).balance == 50_000
        assert session.get(Organization, acme.id).plan_key == "growth"
        assert session.get(Organization, rival.id).plan_key == "starter"
    assert recorded(engine, "evt_good").outcome == "credits_purchased"
    assert recorded(engine, "evt_paid").outcome == "monthly_credits_granted"


def test_an_invoice_id_of_another_organization_is_not_rewritten(engine, client, orgs):
    """A paid invoice of Rival, replayed as Acme's, neither moves nor changes Rival's invoice."""
    rival_invoice = invoice(id="in_rival_1", customer="cus_rival", subscription="sub_rival")
    assert post(client, event("evt_r", "invoice.paid", rival_invoice)).json()["effect"] == (
        "monthly_credits_granted"
    )
    before = snapshot(engine)
    hijack = invoice(id="in_rival_1", subscription=None, amount_paid=1)
    answer = post(client, event("evt_hijack", "invoice.paid", hijack))
    assert answer.status_code == 200
    assert "in_rival_1 belongs to another organization" in answer.json()["effect"]
    assert snapshot(engine) == before
    with Session(engine) as session:
        stored = session.exec(select(Invoice).where(Invoice.provider_invoice_id == "in_rival_1"))
        assert stored.one().amount_cents == 9900
