"""Checkout and Customer Portal at the adapter boundary: a loopback HTTP server records what
the official stripe SDK sends (localstripe has no Checkout Sessions or Portal)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from core.clock import utcnow
from core.settings import get_settings, reset_settings_cache
from models import Organization, User
from services import billing, orgs
from services.errors import DomainError
from services.providers.payments import StripeProvider, payment_provider


class _Recorder(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict, dict]] = []
    fail_next = False

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        type(self).requests.append(("POST", self.path, form, dict(self.headers)))
        if type(self).fail_next:
            type(self).fail_next = False
            self._send(
                400, {"error": {"type": "invalid_request_error", "message": "No such price"}}
            )
        elif self.path == "/v1/customers":
            self._send(200, {"id": "cus_adapter_1", "object": "customer"})
        elif self.path == "/v1/checkout/sessions":
            self._send(
                200,
                {
                    "id": "cs_test_1",
                    "object": "checkout.session",
                    "url": "https://checkout.stripe.test/c/pay/cs_test_1",
                },
            )
        elif self.path == "/v1/billing_portal/sessions":
            self._send(
                200,
                {
                    "id": "bps_1",
                    "object": "billing_portal.session",
                    "url": "https://billing.stripe.test/p/session/1",
                },
            )
        else:
            self._send(404, {"error": {"message": "unknown"}})

    def _send(self, status, data):
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def stripe_api(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Recorder.requests = []
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_adapter")
    monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_adapter")
    reset_settings_cache()
    yield _Recorder
    server.shutdown()


@pytest.fixture
def owner_org(session):
    owner = User(email="owner@adapter.test", name="Owner", email_verified_at=utcnow())
    session.add(owner)
    session.flush()
    org = orgs.org_create(
        session=session, owner=owner, name="Adapter", slug="adapter", plan_key="free"
    )
    session.commit()
    return owner, org


def test_upgrade_checkout_request(session, stripe_api, owner_org):
    owner, org = owner_org
    assert isinstance(payment_provider(), StripeProvider)
    checkout = billing.checkout_start(
        session=session,
        actor=owner,
        org_id=org.id,
        purpose="upgrade",
        plan_key="growth",
        billing_url="https://app.test/org/adapter/billing",
    )
    session.commit()
    assert checkout.url == "https://checkout.stripe.test/c/pay/cs_test_1"
    (_, _, customer, customer_headers), (_, path, form, headers) = stripe_api.requests
    assert customer["metadata[org_id]"] == str(org.id)
    assert customer_headers.get("Idempotency-Key") == f"creative-studio-org-{org.id}-customer"
    assert headers["Authorization"] == "Bearer sk_test_adapter"
    assert path == "/v1/checkout/sessions"
    assert form["mode"] == "subscription"
    assert form["customer"] == "cus_adapter_1"
    assert form["line_items[0][price_data][unit_amount]"] == "9900"
    assert form["line_items[0][price_data][recurring][interval]"] == "month"
    assert form["metadata[plan_key]"] == "growth" and form["metadata[purpose]"] == "upgrade"
    assert form["subscription_data[metadata][plan_key]"] == "growth"
    assert form["success_url"] == "https://app.test/org/adapter/billing?checkout=success"
    assert session.get(Organization, org.id).stripe_customer_id == "cus_adapter_1"


def test_top_up_checkout_states_blocks(session, stripe_api, owner_org):
    owner, org = owner_org
    billing.checkout_start(
        session=session,
        actor=owner,
        org_id=org.id,
        purpose="top_up",
        blocks="3",
        billing_url="https://app.test/b",
    )
    form = stripe_api.requests[-1][2]
    assert form["mode"] == "payment"
    assert form["line_items[0][quantity]"] == "3"
    assert form["line_items[0][price_data][unit_amount]"] == "100"
    assert form["line_items[0][price_data][product_data][name]"] == "10 Creative Studio credits"
    assert (
        form["metadata[credits]"] == "30" and form["payment_intent_data[metadata][credits]"] == "30"
    )


def test_setup_checkout_and_portal(session, stripe_api, owner_org):
    owner, org = owner_org
    billing.checkout_start(
        session=session,
        actor=owner,
        org_id=org.id,
        purpose="billing_profile",
        billing_url="https://app.test/b",
    )
    assert stripe_api.requests[-1][2]["mode"] == "setup"
    url = billing.portal_start(
        session=session, actor=owner, org_id=org.id, return_url="https://app.test/b"
    )
    assert url == "https://billing.stripe.test/p/session/1"
    path, form = stripe_api.requests[-1][1:3]
    assert path == "/v1/billing_portal/sessions" and form == {
        "customer": "cus_adapter_1",
        "return_url": "https://app.test/b",
    }
    # the customer was created once and reused
    assert [r[1] for r in stripe_api.requests].count("/v1/customers") == 1


def test_provider_error_is_a_domain_error(session, stripe_api, owner_org):
    owner, org = owner_org
    billing.billing_customer_ensure(session=session, actor=owner, org_id=org.id)
    stripe_api.fail_next = True
    with pytest.raises(DomainError) as error:
        billing.checkout_start(
            session=session,
            actor=owner,
            org_id=org.id,
            purpose="top_up",
            blocks=1,
            billing_url="https://a/b",
        )
    assert error.value.code == "payment_provider_error"
    assert get_settings().payments_mode == "stripe"
