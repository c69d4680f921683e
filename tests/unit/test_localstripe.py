"""Stripe lifecycle against a real `localstripe` server, with webhooks delivered BY localstripe
to the app's webhook endpoint (the Starlette API under uvicorn on a free port).

Customers, legacy Plans, subscriptions, invoices and signed webhooks are what localstripe
supports; Checkout and the Customer Portal are tested at the adapter boundary elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import stripe
import uvicorn
from sqlmodel import Session, select

from core.clock import utcnow
from core.settings import get_settings
from models import Invoice, Organization, ProcessedWebhookEvent, Subscription, User
from services import billing, credits, orgs
from services.providers.payments import StripeProvider
from tests.factories import free_port

LOCALSTRIPE = Path(sys.executable).parent / "localstripe"
WEBHOOK_SECRET = "whsec_localstripe_test_secret"
pytestmark = pytest.mark.skipif(
    not LOCALSTRIPE.exists() and not shutil.which("localstripe"), reason="localstripe not installed"
)


def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


@pytest.fixture
def localstripe_url(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [str(LOCALSTRIPE), "--port", str(port), "--from-scratch"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/v1/customers")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def app_url(engine):
    from creative_studio.api import build_api

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_api(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/healthz")
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def stripe_env(monkeypatch, localstripe_url):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_localstripe")
    monkeypatch.setenv("STRIPE_API_BASE", localstripe_url)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    from core.settings import reset_settings_cache

    reset_settings_cache()
    assert get_settings().payments_mode == "stripe"
    return stripe.StripeClient("sk_test_localstripe", base_addresses={"api": localstripe_url})


def _wait_for(check, timeout: float = 20):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"condition not reached in {timeout}s (last: {last!r})")


def test_subscription_lifecycle_with_webhooks_from_localstripe(
    engine, stripe_env, localstripe_url, app_url
):
    client = stripe_env
    registered = httpx.post(
        f"{localstripe_url}/_config/webhooks/creative-studio",
        json={
            "url": f"{app_url}/webhooks/stripe",
            "secret": WEBHOOK_SECRET,
            "events": [
                "customer.subscription.created",
                "customer.subscription.updated",
                "customer.subscription.deleted",
                "invoice.paid",
                "invoice.payment_succeeded",
                "invoice.payment_failed",
            ],
        },
    )
    assert registered.status_code == 200

    with Session(engine, expire_on_commit=False) as session:
        owner = User(email="owner@ls.test", name="Owner", email_verified_at=utcnow())
        session.add(owner)
        session.flush()
        org = orgs.org_create(
            session=session, owner=owner, name="LS Org", slug="ls-org", plan_key="free"
        )
        customer_id = billing.billing_customer_ensure(
            session=session, actor=owner, org_id=org.id, provider=StripeProvider(get_settings())
        )
        session.commit()
    assert customer_id.startswith("cus_")
    assert client.v1.customers.retrieve(customer_id).metadata["org_id"] == str(org.id)

    product = client.v1.products.create(params={"name": "Creative Studio Growth"})
    client.v1.plans.create(
        params={
            "id": "cs-growth-monthly",
            "amount": 9900,
            "currency": "usd",
            "interval": "month",
            "product": product.id,
            "metadata": {"plan_key": "growth"},
        }
    )
    card = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(card.id, params={"customer": customer_id})
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"plan": "cs-growth-monthly"}],
            "metadata": {"org_id": str(org.id), "plan_key": "growth"},
        }
    )
    assert subscription.status == "active"

    def granted():
        with Session(engine) as session:
            return (
                credits.balance_get(session=session, org_id=org.id).balance == (50 + 3000) * 1000
            )  # the first Free grant, then Growth

    _wait_for(granted)

    def subscribed():
        with Session(engine) as session:
            sub = session.exec(select(Subscription).where(Subscription.org_id == org.id)).one()
            return (
                sub
                if sub.stripe_subscription_id == subscription.id and sub.status == "active"
                else None
            )

    sub = _wait_for(subscribed)
    assert sub.plan_key == "growth"

    def both_delivered():  # localstripe sends the two webhooks in no fixed order
        with Session(engine) as session:
            types = {e.event_type for e in session.exec(select(ProcessedWebhookEvent))}
        return {"invoice.payment_succeeded", "customer.subscription.created"} <= types

    _wait_for(both_delivered)
    with Session(engine) as session:
        invoice = session.exec(select(Invoice).where(Invoice.org_id == org.id)).one()
        assert (invoice.status, invoice.amount_cents, invoice.credits, invoice.kind) == (
            "paid",
            9900,
            3000,
            "subscription",
        )
        assert session.get(Organization, org.id).plan_key == "growth"
        types = sorted(e.event_type for e in session.exec(select(ProcessedWebhookEvent)))
        assert "invoice.payment_succeeded" in types and "customer.subscription.created" in types

    client.v1.subscriptions.cancel(subscription.id)

    def expired():
        with Session(engine) as session:
            sub = session.exec(select(Subscription).where(Subscription.org_id == org.id)).one()
            return sub.status == "expired"

    _wait_for(expired)
    time.sleep(1.5)  # any late redelivery would land here
    with Session(engine) as session:
        assert (
            credits.balance_get(session=session, org_id=org.id).balance == (50 + 3000) * 1000
        )  # the first Free grant, then Growth
        assert (
            credits.ledger_sum(session=session, org_id=org.id) == (50 + 3000) * 1000
        )  # the first Free grant, then Growth
