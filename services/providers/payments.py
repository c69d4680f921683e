"""The payment provider behind one interface: Stripe, or the local payment mode.

`payment_provider()` returns a `StripeProvider` when STRIPE_SECRET_KEY is set and a
`LocalPaymentProvider` otherwise. Both verify webhooks the same way
(`stripe.Webhook.construct_event` with a timestamp tolerance), so fulfilment
(`services.billing.webhook_receive`) never knows which one produced an event.

Local payment mode: no real money moves. A "checkout session" is a signed token (no table)
that the local checkout page shows; when the owner confirms, the provider builds the same
event JSON Stripe would send (`checkout.session.completed`, `invoice.paid`), signs it with
a webhook secret derived from SECRET_KEY, and hands it to the same verification and
fulfilment code as a real Stripe webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import stripe

from core import crypto
from core.settings import Settings, get_settings

WEBHOOK_TOLERANCE_SECONDS = 300
LOCAL_CHECKOUT_MAX_AGE_SECONDS = 60 * 60
_LOCAL_CHECKOUT_PURPOSE = "local-checkout"
_LOCAL_PERIOD_SECONDS = 30 * 24 * 60 * 60

CheckoutPurpose = Literal["upgrade", "top_up", "billing_profile"]


class PaymentProviderError(Exception):
    """The payment provider refused or could not be reached (message is safe to show)."""


class PortalUnavailable(PaymentProviderError):
    """The Customer Portal exists only with Stripe."""


class WebhookSignatureError(Exception):
    """A webhook whose signature is wrong or whose timestamp is outside the tolerance."""

    def __init__(
        self,
        code: Literal["signature_invalid", "timestamp_stale", "webhook_not_an_event"],
        message: str,
    ):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CheckoutRequest:
    """What to sell in one checkout. Amounts in cents; credits are whole credits."""

    org_id: int
    customer_id: str
    purpose: CheckoutPurpose
    success_url: str
    cancel_url: str
    local_checkout_path: str = ""  # where the local checkout page lives (local mode only)
    currency: str = "usd"
    plan_key: str = ""
    plan_name: str = ""
    plan_price_cents: int = 0
    plan_monthly_credits: int = 0
    stripe_price_id: str | None = None
    blocks: int = 0
    block_credits: int = 0
    block_price_cents: int = 0

    @property
    def metadata(self) -> dict[str, str]:
        data = {"org_id": str(self.org_id), "purpose": self.purpose}
        if self.purpose == "upgrade":
            data["plan_key"] = self.plan_key
        if self.purpose == "top_up":
            data |= {
                "blocks": str(self.blocks),
                "block_credits": str(self.block_credits),
                "credits": str(self.blocks * self.block_credits),
            }
        return data

    @property
    def amount_cents(self) -> int:
        if self.purpose == "upgrade":
            return self.plan_price_cents
        if self.purpose == "top_up":
            return self.blocks * self.block_price_cents
        return 0


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


class PaymentProvider(Protocol):
    mode: Literal["stripe", "local"]

    def customer_create(self, *, org_id: int, name: str, email: str) -> str: ...

    def checkout_session_create(self, request: CheckoutRequest) -> CheckoutSession: ...

    def portal_session_create(self, *, customer_id: str, return_url: str) -> str: ...

    def webhook_verify(self, *, payload: bytes, signature_header: str) -> dict[str, Any]: ...


def _verify(payload: bytes, signature_header: str, secret: str, tolerance: int) -> dict[str, Any]:
    """Stripe's own verification; the JSON body as a dict once the signature is good."""
    if not secret:
        raise WebhookSignatureError(
            "signature_invalid", "Webhook secret is not configured; the event was refused."
        )
    try:
        # The signature only: Stripe's construct_event fails with AttributeError on a signed
        # body that is valid JSON but not an object (an array, a string).
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        if "tolerance" in str(exc):
            raise WebhookSignatureError(
                "timestamp_stale",
                f"The signature timestamp is older than {tolerance} seconds; the event was refused.",
            ) from None
        raise WebhookSignatureError(
            "signature_invalid", "The Stripe-Signature header does not match the payload."
        ) from None
    except ValueError:  # not UTF-8: Stripe signs text, so this body was not signed by it
        raise WebhookSignatureError(
            "signature_invalid", "The body is not UTF-8 text; the event was refused."
        ) from None
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than any event
        event = None
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise WebhookSignatureError(
            "webhook_not_an_event",
            "The body is not a Stripe event (a JSON object with an id and a type); "
            "nothing was applied.",
        )
    return event


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value (t=...,v1=...) for a payload, as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# --- Stripe -------------------------------------------------------------------------------


class StripeProvider:
    """Stripe through the official SDK (`STRIPE_API_BASE` points it at another server)."""

    mode: Literal["stripe", "local"] = "stripe"

    def __init__(self, settings: Settings, *, tolerance: int = WEBHOOK_TOLERANCE_SECONDS):
        base = {"api": settings.stripe_api_base.rstrip("/")} if settings.stripe_api_base else None
        self._client = stripe.StripeClient(
            settings.stripe_secret_key, base_addresses=base, max_network_retries=2
        )
        self._webhook_secret = settings.stripe_webhook_secret
        self.tolerance = tolerance

    def _call(self, fn, params: dict, options: dict | None = None):
        try:
            return fn(params=params, options=options or {})
        except stripe.StripeError as exc:
            message = getattr(exc, "user_message", None) or "Stripe refused the request."
            raise PaymentProviderError(f"{message} Try again in a minute.") from exc

    def customer_create(self, *, org_id: int, name: str, email: str) -> str:
        customer = self._call(
            self._client.v1.customers.create,
            {"name": name, "email": email, "metadata": {"org_id": str(org_id)}},
            {"idempotency_key": f"creative-studio-org-{org_id}-customer"},
        )
        return customer.id

    def checkout_session_create(self, request: CheckoutRequest) -> CheckoutSession:
        params: dict[str, Any] = {
            "customer": request.customer_id,
            "client_reference_id": str(request.org_id),
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "metadata": request.metadata,
        }
        if request.purpose == "upgrade":
            if request.stripe_price_id:
                line_item: dict[str, Any] = {"price": request.stripe_price_id, "quantity": 1}
            else:
                line_item = {
                    "price_data": {
                        "currency": request.currency,
                        "unit_amount": request.plan_price_cents,
                        "recurring": {"interval": "month"},
                        "product_data": {
                            "name": f"Creative Studio {request.plan_name}",
                            "metadata": {"plan_key": request.plan_key},
                        },
                    },
                    "quantity": 1,
                }
            params |= {
                "mode": "subscription",
                "line_items": [line_item],
                "subscription_data": {"metadata": request.metadata},
            }
        elif request.purpose == "top_up":
            params |= {
                "mode": "payment",
                "line_items": [
                    {
                        "price_data": {
                            "currency": request.currency,
                            "unit_amount": request.block_price_cents,
                            "product_data": {
                                "name": f"{request.block_credits} Creative Studio credits",
                            },
                        },
                        "quantity": request.blocks,
                    }
                ],
                "payment_intent_data": {"metadata": request.metadata},
            }
        else:
            params |= {"mode": "setup", "currency": request.currency}
        session = self._call(self._client.v1.checkout.sessions.create, params)
        return CheckoutSession(id=session.id, url=session.url)

    def portal_session_create(self, *, customer_id: str, return_url: str) -> str:
        portal = self._call(
            self._client.v1.billing_portal.sessions.create,
            {"customer": customer_id, "return_url": return_url},
        )
        return portal.url

    def webhook_verify(self, *, payload: bytes, signature_header: str) -> dict[str, Any]:
        return _verify(payload, signature_header, self._webhook_secret, self.tolerance)


# --- local payment mode -------------------------------------------------------------------


@dataclass(frozen=True)
class LocalCheckout:
    """A local checkout session, carried in a signed token."""

    id: str
    org_id: int
    customer_id: str
    purpose: CheckoutPurpose
    amount_cents: int
    currency: str
    metadata: dict[str, str] = field(default_factory=dict)
    plan_name: str = ""
    plan_monthly_credits: int = 0
    blocks: int = 0
    block_credits: int = 0
    block_price_cents: int = 0
    success_url: str = ""
    cancel_url: str = ""

    @property
    def suffix(self) -> str:
        return self.id.removeprefix("cs_local_")


def local_webhook_secret(settings: Settings | None = None) -> str:
    """The local mode's webhook secret, derived from SECRET_KEY (never stored)."""
    secret = (settings or get_settings()).secret_key.encode()
    return "whsec_local_" + hmac.new(secret, b"local-webhook", hashlib.sha256).hexdigest()


class LocalPaymentProvider:
    """Payments without Stripe: a labelled local checkout page; events signed like Stripe's."""

    mode: Literal["stripe", "local"] = "local"

    def __init__(self, settings: Settings, *, tolerance: int = WEBHOOK_TOLERANCE_SECONDS):
        self._secret = local_webhook_secret(settings)
        self.tolerance = tolerance

    def customer_create(self, *, org_id: int, name: str, email: str) -> str:
        return f"cus_local_{org_id}_{crypto.new_token(6)}"

    def checkout_session_create(self, request: CheckoutRequest) -> CheckoutSession:
        checkout_id = f"cs_local_{crypto.new_token(12)}"
        data = {
            "id": checkout_id,
            "org_id": request.org_id,
            "customer_id": request.customer_id,
            "purpose": request.purpose,
            "amount_cents": request.amount_cents,
            "currency": request.currency,
            "metadata": request.metadata,
            "plan_name": request.plan_name,
            "plan_monthly_credits": request.plan_monthly_credits,
            "blocks": request.blocks,
            "block_credits": request.block_credits,
            "block_price_cents": request.block_price_cents,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        token = crypto.sign(data, purpose=_LOCAL_CHECKOUT_PURPOSE)
        return CheckoutSession(id=checkout_id, url=f"{request.local_checkout_path}?session={token}")

    def checkout_read(self, token: str) -> LocalCheckout:
        """The checkout behind a token. Raises crypto.SignatureInvalid (expired/invalid)."""
        data = crypto.unsign(
            token, purpose=_LOCAL_CHECKOUT_PURPOSE, max_age_seconds=LOCAL_CHECKOUT_MAX_AGE_SECONDS
        )
        return LocalCheckout(**data)

    def portal_session_create(self, *, customer_id: str, return_url: str) -> str:
        raise PortalUnavailable(
            "The Customer Portal is a Stripe page, so it is not available in local payment mode. "
            "Change plans and add credits on this page instead."
        )

    def webhook_verify(self, *, payload: bytes, signature_header: str) -> dict[str, Any]:
        return _verify(payload, signature_header, self._secret, self.tolerance)

    def sign(self, payload: bytes, timestamp: int | None = None) -> str:
        return signature_header(payload, self._secret, timestamp)

    def checkout_events(
        self, checkout: LocalCheckout, *, billing_name: str = "", now: int | None = None
    ) -> list[dict[str, Any]]:
        """The events Stripe would send once this checkout is paid, in Stripe's JSON shape."""
        created = int(time.time()) if now is None else int(now)
        subscription_id = f"sub_local_{checkout.suffix}" if checkout.purpose == "upgrade" else None
        mode = {"upgrade": "subscription", "top_up": "payment", "billing_profile": "setup"}[
            checkout.purpose
        ]
        session_object = {
            "id": checkout.id,
            "object": "checkout.session",
            "mode": mode,
            "status": "complete",
            "payment_status": "paid" if checkout.amount_cents else "no_payment_required",
            "customer": checkout.customer_id,
            "customer_details": {"name": billing_name or None},
            "client_reference_id": str(checkout.org_id),
            "metadata": dict(checkout.metadata),
            "amount_total": checkout.amount_cents,
            "currency": checkout.currency,
            "subscription": subscription_id,
            "invoice": None,
            "livemode": False,
        }
        events = [
            _event(
                f"evt_local_{checkout.suffix}",
                "checkout.session.completed",
                session_object,
                created,
            )
        ]
        if subscription_id is not None:
            period_end = created + _LOCAL_PERIOD_SECONDS
            invoice_object = {
                "id": f"in_local_{checkout.suffix}",
                "object": "invoice",
                "customer": checkout.customer_id,
                "subscription": subscription_id,
                "parent": {
                    "type": "subscription_details",
                    "subscription_details": {
                        "subscription": subscription_id,
                        "metadata": dict(checkout.metadata),
                    },
                },
                "status": "paid",
                "billing_reason": "subscription_create",
                "amount_paid": checkout.amount_cents,
                "currency": checkout.currency,
                "hosted_invoice_url": None,
                "period_start": created,
                "period_end": created,
                "lines": {
                    "object": "list",
                    "data": [
                        {
                            "object": "line_item",
                            "description": f"Creative Studio {checkout.plan_name}",
                            "amount": checkout.amount_cents,
                            "metadata": dict(checkout.metadata),
                            "period": {"start": created, "end": period_end},
                        }
                    ],
                },
                "livemode": False,
            }
            events.append(
                _event(f"evt_local_{checkout.suffix}_paid", "invoice.paid", invoice_object, created)
            )
        return events


def _event(event_id: str, event_type: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created,
        "livemode": False,
        "api_version": "2025-01-27.acacia",
        "data": {"object": obj},
    }


def payment_provider(settings: Settings | None = None) -> StripeProvider | LocalPaymentProvider:
    """Stripe when STRIPE_SECRET_KEY is set, else the local payment mode."""
    settings = settings or get_settings()
    if settings.payments_mode == "stripe":
        return StripeProvider(settings)
    return LocalPaymentProvider(settings)
