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
PlanChangeKind = Literal["upgrade", "downgrade", "cancel", "resume"]


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


@dataclass(frozen=True)
class SubscriptionChange:
    """A change to the org's one live subscription. Amounts in cents; times are Unix seconds.

    upgrade: the new plan now, the prorated difference charged at once.
    downgrade: `to_plan` from the end of the paid period (nothing charged now).
    cancel: back to Free at the end of the paid period. resume: undo a downgrade or cancel.
    """

    org_id: int
    customer_id: str
    subscription_id: str
    kind: PlanChangeKind
    from_plan_key: str
    from_plan_name: str
    from_price_cents: int
    to_plan_key: str
    to_plan_name: str
    to_price_cents: int
    period_start: int
    period_end: int
    charge_cents: int = 0  # upgrade: the prorated difference (the local mode charges it)
    to_stripe_price_id: str | None = None
    currency: str = "usd"

    @property
    def metadata(self) -> dict[str, str]:
        plan_now = self.to_plan_key if self.kind == "upgrade" else self.from_plan_key
        scheduled = self.to_plan_key if self.kind in ("downgrade", "cancel") else ""
        return {"org_id": str(self.org_id), "plan_key": plan_now, "scheduled_plan_key": scheduled}


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

    def subscription_change(self, change: SubscriptionChange) -> None:
        """Apply a plan change to the live Stripe subscription; its webhooks then fulfil it.

        Upgrade: the subscription's item moves to the new price with `always_invoice`, so Stripe
        charges the prorated difference at once (`invoice.paid` with proration lines). Downgrade:
        a subscription schedule keeps the current price to the end of the period, then the new
        one. Cancel: `cancel_at_period_end`. Resume: both undone.
        """
        subscriptions = self._client.v1.subscriptions
        current = self._call(
            lambda params, options: subscriptions.retrieve(
                change.subscription_id, params=params, options=options
            ),
            {},
        )
        current = current.to_dict() if hasattr(current, "to_dict") else dict(current)
        item = current["items"]["data"][0]
        schedule_id = current.get("schedule")
        schedule_id = schedule_id.get("id") if isinstance(schedule_id, dict) else schedule_id
        if schedule_id and change.kind in ("upgrade", "cancel", "resume"):
            schedules = self._client.v1.subscription_schedules
            self._call(
                lambda params, options: schedules.release(
                    schedule_id, params=params, options=options
                ),
                {"preserve_cancel_date": False},
            )
        if change.kind == "upgrade":
            self._call(
                lambda params, options: subscriptions.update(
                    change.subscription_id, params=params, options=options
                ),
                {
                    "items": [{"id": item["id"], "price": self._price_id(change, item)}],
                    "proration_behavior": "always_invoice",
                    "payment_behavior": "error_if_incomplete",
                    "cancel_at_period_end": False,
                    "metadata": change.metadata,
                },
            )
        elif change.kind == "downgrade":
            schedules = self._client.v1.subscription_schedules
            schedule = self._call(schedules.create, {"from_subscription": change.subscription_id})
            current_price = (
                item["price"]["id"] if isinstance(item["price"], dict) else item["price"]
            )
            self._call(
                lambda params, options: schedules.update(
                    schedule.id, params=params, options=options
                ),
                {
                    "end_behavior": "release",
                    "phases": [
                        {
                            "items": [{"price": current_price, "quantity": 1}],
                            "start_date": change.period_start,
                            "end_date": change.period_end,
                        },
                        {
                            "items": [{"price": self._price_id(change, item), "quantity": 1}],
                            "metadata": {**change.metadata, "plan_key": change.to_plan_key},
                        },
                    ],
                },
            )
            # The subscription says what is scheduled, so its webhook shows "Starter from <date>".
            self._call(
                lambda params, options: subscriptions.update(
                    change.subscription_id, params=params, options=options
                ),
                {"metadata": change.metadata},
            )
        else:
            self._call(
                lambda params, options: subscriptions.update(
                    change.subscription_id, params=params, options=options
                ),
                {"cancel_at_period_end": change.kind == "cancel", "metadata": change.metadata},
            )

    def _price_id(self, change: SubscriptionChange, item: Any) -> str:
        """The catalog's Stripe price for the new plan, or a monthly price made for it."""
        if change.to_stripe_price_id:
            return change.to_stripe_price_id
        price = item["price"]
        product = price.get("product") if isinstance(price, dict) else None
        params: dict[str, Any] = {
            "currency": change.currency,
            "unit_amount": change.to_price_cents,
            "recurring": {"interval": "month"},
            "metadata": {"plan_key": change.to_plan_key},
        }
        if product:
            params["product"] = product.get("id") if isinstance(product, dict) else product
        else:
            params["product_data"] = {"name": f"Creative Studio {change.to_plan_name}"}
        return self._call(self._client.v1.prices.create, params).id

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

    def subscription_change(self, change: SubscriptionChange) -> None:
        """Nothing to call: the local mode's changes are the events of `subscription_events`."""

    def subscription_events(
        self, change: SubscriptionChange, *, now: int | None = None
    ) -> list[dict[str, Any]]:
        """What Stripe sends after a plan change: the subscription, and for an upgrade the
        invoice of the prorated difference (one line crediting the unused time of the old plan,
        one charging the rest of the period on the new one)."""
        created = int(time.time()) if now is None else int(now)
        tag = f"{change.subscription_id.removeprefix('sub_local_')}_{created}_{crypto.new_token(4)}"
        plan_now = change.to_plan_key if change.kind == "upgrade" else change.from_plan_key
        events = [
            _event(
                f"evt_local_{tag}_updated",
                "customer.subscription.updated",
                _local_subscription(
                    change.subscription_id,
                    change.customer_id,
                    change.metadata,
                    plan_now,
                    change.period_start,
                    change.period_end,
                    cancel_at_period_end=change.kind == "cancel",
                ),
                created,
            )
        ]
        if change.kind == "upgrade":
            start = min(max(created, change.period_start), change.period_end)
            # The two lines add up to exactly the charge quoted to the owner.
            new_line = _prorated_cents(change.to_price_cents, change, start)
            old_line = new_line - change.charge_cents
            invoice = {
                "id": f"in_local_{tag}",
                "object": "invoice",
                "customer": change.customer_id,
                "subscription": change.subscription_id,
                "billing_reason": "subscription_update",
                "status": "paid",
                "amount_paid": change.charge_cents,
                "currency": change.currency,
                "hosted_invoice_url": None,
                "period_start": created,
                "period_end": created,
                "lines": {
                    "object": "list",
                    "data": [
                        _proration_line(
                            f"Unused time on {change.from_plan_name}",
                            -old_line,
                            change.from_plan_key,
                            start,
                            change.period_end,
                        ),
                        _proration_line(
                            f"Remaining time on {change.to_plan_name}",
                            new_line,
                            change.to_plan_key,
                            start,
                            change.period_end,
                        ),
                    ],
                },
                "livemode": False,
            }
            events.append(_event(f"evt_local_{tag}_paid", "invoice.paid", invoice, created))
        return events

    def renewal_events(
        self,
        *,
        org_id: int,
        customer_id: str,
        subscription_id: str,
        plan_key: str,
        plan_name: str,
        price_cents: int,
        period_start: int,
        currency: str = "usd",
        canceled: bool = False,
    ) -> list[dict[str, Any]]:
        """What Stripe sends when a period ends: the subscription deleted (a cancel), or the
        next period's invoice paid on `plan_key` and the subscription updated."""
        period_end = period_start + _LOCAL_PERIOD_SECONDS
        tag = f"{subscription_id.removeprefix('sub_local_')}_{period_start}"
        metadata = {"org_id": str(org_id), "plan_key": plan_key, "scheduled_plan_key": ""}
        if canceled:
            obj = _local_subscription(
                subscription_id,
                customer_id,
                metadata,
                plan_key,
                period_start - _LOCAL_PERIOD_SECONDS,
                period_start,
                cancel_at_period_end=True,
            )
            obj |= {
                "status": "canceled",
                "cancellation_details": {"reason": "cancellation_requested"},
            }
            return [
                _event(
                    f"evt_local_{tag}_deleted", "customer.subscription.deleted", obj, period_start
                )
            ]
        invoice = {
            "id": f"in_local_{tag}",
            "object": "invoice",
            "customer": customer_id,
            "subscription": subscription_id,
            "billing_reason": "subscription_cycle",
            "status": "paid",
            "amount_paid": price_cents,
            "currency": currency,
            "hosted_invoice_url": None,
            "period_start": period_start,
            "period_end": period_start,
            "lines": {
                "object": "list",
                "data": [
                    {
                        "object": "line_item",
                        "description": f"Creative Studio {plan_name}",
                        "amount": price_cents,
                        "metadata": dict(metadata),
                        "period": {"start": period_start, "end": period_end},
                    }
                ],
            },
            "livemode": False,
        }
        return [
            _event(f"evt_local_{tag}_paid", "invoice.paid", invoice, period_start),
            _event(
                f"evt_local_{tag}_renewed",
                "customer.subscription.updated",
                _local_subscription(
                    subscription_id, customer_id, metadata, plan_key, period_start, period_end
                ),
                period_start,
            ),
        ]


def _prorated_cents(price_cents: int, change: SubscriptionChange, start: int) -> int:
    total = max(change.period_end - change.period_start, 1)
    return round(price_cents * (change.period_end - start) / total)


def _proration_line(description: str, amount: int, plan_key: str, start: int, end: int) -> dict:
    return {
        "object": "line_item",
        "description": description,
        "amount": amount,
        "proration": True,
        "price": {"id": f"price_local_{plan_key}", "metadata": {"plan_key": plan_key}},
        "metadata": {},
        "period": {"start": start, "end": end},
    }


def _local_subscription(
    subscription_id: str,
    customer_id: str,
    metadata: dict[str, str],
    plan_key: str,
    period_start: int,
    period_end: int,
    *,
    cancel_at_period_end: bool = False,
) -> dict[str, Any]:
    return {
        "id": subscription_id,
        "object": "subscription",
        "customer": customer_id,
        "status": "active",
        "cancel_at_period_end": cancel_at_period_end,
        "current_period_start": period_start,
        "current_period_end": period_end,
        "metadata": dict(metadata),
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_local_{subscription_id.removeprefix('sub_local_')}",
                    "price": {"id": f"price_local_{plan_key}", "metadata": {"plan_key": plan_key}},
                    "current_period_start": period_start,
                    "current_period_end": period_end,
                }
            ],
        },
        "livemode": False,
    }


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
