"""Customer, checkout (upgrades, top-ups, billing profile), Customer Portal, and the local
payment mode that confirms a checkout by delivering signed events through the webhook path.

Transactions: functions taking ``session`` flush and never commit (the caller commits, then
redirects); `local_checkout_confirm` owns its unit of work (`core.db.session_scope()` for the
checks, then one `webhook_receive` per event, each committing on its own).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from core import crypto, db, routes
from core.clock import as_utc
from models import ProcessedWebhookEvent, User
from models.enums import EXECUTABLE_SUBSCRIPTION_STATUSES
from services.audit import audit_record
from services.billing.common import (
    PROVIDER_STRIPE,
    _require_owner,
    _subscription,
    format_money,
    top_up_terms,
)
from services.billing.subscriptions import live_subscription
from services.billing.webhooks import WebhookOutcome, webhook_receive
from services.catalog import plan_get
from services.error_codes import Code
from services.errors import Conflict, NotFound, ValidationFailed, error_with_code
from services.providers.payments import (
    CheckoutRequest,
    CheckoutSession,
    LocalPaymentProvider,
    PaymentProviderError,
    PortalUnavailable,
    payment_provider,
)


def top_up_quote(blocks: Any) -> tuple[int, int, int]:
    """(blocks, credits, price in cents) for a number of blocks, validated.

    Raises:
        ValidationFailed: not a whole number of blocks between 1 and the maximum.
    """
    terms = top_up_terms()
    try:
        count = int(str(blocks).strip())
    except ValueError:
        count = 0
    if str(blocks).strip() != str(count) or not 1 <= count <= terms.max_blocks:
        raise ValidationFailed(
            f"Enter a whole number of blocks from 1 to {terms.max_blocks:,}. {terms.describe()}",
            field="blocks",
        )
    return count, count * terms.block_credits, count * terms.block_price_cents


# --- customer, checkout, portal -------------------------------------------------------------


def billing_customer_ensure(*, session: Session, actor: User, org_id: int, provider=None) -> str:
    """The org's payment-provider customer id, created on the first billing action."""
    org = _require_owner(session, actor, org_id)
    if org.stripe_customer_id:
        return org.stripe_customer_id
    provider = provider or payment_provider()
    customer_id = provider.customer_create(org_id=org.id, name=org.name, email=actor.email)
    org.stripe_customer_id = customer_id
    session.add(org)
    session.flush()
    audit_record(
        session=session,
        action="billing.customer_created",
        actor_user_id=actor.id,
        org_id=org.id,
        target_type="organization",
        target_id=org.id,
        details={"customer": customer_id, "mode": provider.mode},
    )
    return customer_id


def checkout_start(
    *,
    session: Session,
    actor: User,
    org_id: int,
    purpose: str,
    billing_url: str,
    plan_key: str | None = None,
    blocks: Any = None,
    provider=None,
) -> CheckoutSession:
    """Start a checkout: "upgrade" (subscribe to `plan_key`), "top_up" (`blocks` of credits)
    or "billing_profile" (save a payment method). The caller commits, then redirects to `url`.

    Args:
        billing_url: absolute URL of the org's Billing page (success/cancel return there).

    Raises:
        PermissionDenied: not the owner. ValidationFailed: bad plan or block count.
        DomainError: code "payment_provider_error" when the provider refuses.
    """
    org = _require_owner(session, actor, org_id)
    provider = provider or payment_provider()
    terms = top_up_terms()
    fields: dict[str, Any] = {}
    if purpose == "upgrade":
        try:
            plan = plan_get(session=session, key=plan_key or "")
        except Exception:
            raise ValidationFailed("Pick a plan from the list.", field="plan_key") from None
        if not plan.is_public or plan.price_cents_monthly <= 0:
            raise ValidationFailed(
                f"{plan.name} is not sold through checkout. Pick a paid plan.", field="plan_key"
            )
        subscription = _subscription(session, org.id)
        if (
            subscription is not None
            and subscription.plan_key == plan.key
            and subscription.status in EXECUTABLE_SUBSCRIPTION_STATUSES
            and subscription.stripe_subscription_id
        ):
            raise ValidationFailed(f"You are already on {plan.name}.", field="plan_key")
        if live_subscription(session, org) is not None:
            # One subscription per organization: a second checkout would bill twice.
            raise ValidationFailed(
                f"This organization already has a subscription. Choose {plan.name} under "
                "Compare plans to change it; only the difference is charged.",
                field="plan_key",
            )
        fields = {
            "plan_key": plan.key,
            "plan_name": plan.name,
            "plan_price_cents": plan.price_cents_monthly,
            "plan_monthly_credits": plan.monthly_credits,
            "stripe_price_id": plan.stripe_price_id,
        }
    elif purpose == "top_up":
        count, _credits, _price = top_up_quote(blocks)
        fields = {
            "blocks": count,
            "block_credits": terms.block_credits,
            "block_price_cents": terms.block_price_cents,
        }
    elif purpose != "billing_profile":
        raise ValidationFailed("Unknown checkout.", field="purpose")
    try:
        customer_id = billing_customer_ensure(
            session=session, actor=actor, org_id=org.id, provider=provider
        )
        request = CheckoutRequest(
            org_id=org.id,
            customer_id=customer_id,
            purpose=purpose,  # type: ignore[arg-type]
            success_url=f"{billing_url}?checkout="
            + ("profile" if purpose == "billing_profile" else "success"),
            cancel_url=f"{billing_url}?checkout=canceled",
            local_checkout_path=routes.org_local_checkout(org.slug),
            currency=terms.currency,
            **fields,
        )
        checkout = provider.checkout_session_create(request)
    except PaymentProviderError as exc:
        raise error_with_code(Code.payment_provider_error, str(exc), http_status=502) from None
    audit_record(
        session=session,
        action="billing.checkout_started",
        actor_user_id=actor.id,
        org_id=org.id,
        target_type="checkout",
        target_id=checkout.id,
        details={"purpose": purpose, **request.metadata, "mode": provider.mode},
    )
    return checkout


def portal_start(
    *, session: Session, actor: User, org_id: int, return_url: str, provider=None
) -> str:
    """A Customer Portal URL (payment methods, invoices, cancel).

    Raises:
        DomainError: "portal_unavailable" in local payment mode; "payment_provider_error".
    """
    _require_owner(session, actor, org_id)
    provider = provider or payment_provider()
    try:
        customer_id = billing_customer_ensure(
            session=session, actor=actor, org_id=org_id, provider=provider
        )
        return provider.portal_session_create(customer_id=customer_id, return_url=return_url)
    except PortalUnavailable as exc:
        raise error_with_code(Code.portal_unavailable, str(exc), http_status=409) from None
    except PaymentProviderError as exc:
        raise error_with_code(Code.payment_provider_error, str(exc), http_status=502) from None


# --- local payment mode ---------------------------------------------------------------------


@dataclass(frozen=True)
class LocalCheckoutView:
    """What the local checkout page shows (no secrets)."""

    checkout_id: str
    purpose: str
    title: str
    lines: list[str]
    amount: str
    success_url: str
    cancel_url: str
    completed: str = ""  # when it was confirmed ("2026-03-01 12:00 UTC"); empty while open


def _local_provider() -> LocalPaymentProvider:
    provider = payment_provider()
    if not isinstance(provider, LocalPaymentProvider):
        raise error_with_code(
            Code.local_payments_off,
            "Local payment mode is off because Stripe is configured. Start checkout again from Billing.",
            base=Conflict,
        )
    return provider


def _local_checkout(provider: LocalPaymentProvider, token: str, org_id: int):
    try:
        checkout = provider.checkout_read(token)
    except crypto.SignatureInvalid as exc:
        reason = "expired" if exc.reason == "expired" else "not valid"
        raise error_with_code(
            Code.checkout_invalid,
            f"This checkout link is {reason}. Start again from Billing.",
            base=ValidationFailed,
        ) from None
    if checkout.org_id != org_id:
        raise NotFound("This checkout belongs to another organization.")
    return checkout


def local_checkout_view(
    *, session: Session, actor: User, org_id: int, token: str
) -> LocalCheckoutView:
    """The local checkout behind a token, for the owner to review before confirming."""
    _require_owner(session, actor, org_id)
    checkout = _local_checkout(_local_provider(), token, org_id)
    money = format_money(checkout.amount_cents, checkout.currency)
    if checkout.purpose == "top_up":
        total_credits = checkout.blocks * checkout.block_credits
        title = f"Buy {total_credits:,} credits"
        lines = [
            f"{checkout.blocks} block{'s' if checkout.blocks != 1 else ''} of "
            f"{checkout.block_credits} credits at "
            f"{format_money(checkout.block_price_cents, checkout.currency)} per block.",
            f"{total_credits:,} credits are added to the organization's balance.",
        ]
    elif checkout.purpose == "upgrade":
        title = f"Subscribe to {checkout.plan_name}"
        lines = [
            f"{checkout.plan_name}: {money} per month, "
            f"{checkout.plan_monthly_credits:,} credits each paid month.",
            "The plan changes as soon as you confirm.",
        ]
    else:
        title = "Add a billing profile"
        lines = ["Nothing is charged. Models become available on the Free plan."]
    completed = session.exec(
        select(ProcessedWebhookEvent.processed_at).where(
            ProcessedWebhookEvent.provider == PROVIDER_STRIPE,
            ProcessedWebhookEvent.event_id == f"evt_local_{checkout.suffix}",
        )
    ).first()
    if completed is not None:
        done = {
            "top_up": f"{checkout.blocks * checkout.block_credits:,} credits were added for {money}.",
            "upgrade": f"The subscription to {checkout.plan_name} started; {money} was paid.",
        }.get(checkout.purpose, "The billing profile was saved; nothing was charged.")
        title = {
            "top_up": "Credits bought",
            "upgrade": f"Subscribed to {checkout.plan_name}",
        }.get(checkout.purpose, "Billing profile saved")
        lines = [f"This checkout was completed on {as_utc(completed):%Y-%m-%d %H:%M} UTC. {done}"]
    return LocalCheckoutView(
        checkout_id=checkout.id,
        purpose=checkout.purpose,
        title=title,
        lines=lines,
        amount=money,
        success_url=checkout.success_url,
        cancel_url=checkout.cancel_url,
        completed="" if completed is None else f"{as_utc(completed):%Y-%m-%d %H:%M} UTC",
    )


def local_checkout_confirm(
    *, actor_user_id: int, org_id: int, token: str, billing_name: str = ""
) -> list[WebhookOutcome]:
    """Confirm a local checkout: build Stripe-shaped events, sign them with the local webhook
    secret, and deliver them through `webhook_receive` (the same path as Stripe webhooks).
    Confirming twice is harmless (the events are duplicates)."""
    provider = _local_provider()
    with db.session_scope() as session:
        actor = session.get(User, actor_user_id)
        if actor is None:
            raise NotFound("Your session has ended. Sign in again.")
        _require_owner(session, actor, org_id)
        checkout = _local_checkout(provider, token, org_id)
        name = " ".join((billing_name or "").split())
        if checkout.purpose == "billing_profile" and not name:
            raise ValidationFailed("Enter the name for the billing profile.", field="billing_name")
        if len(name) > 120:
            raise ValidationFailed("Use at most 120 characters for the name.", field="billing_name")
        live = live_subscription(session, _require_owner(session, actor, org_id))
        if (
            checkout.purpose == "upgrade"
            and live is not None
            and live.stripe_subscription_id != f"sub_local_{checkout.suffix}"
        ):
            # An older checkout link must not start a second subscription beside the live one.
            raise ValidationFailed(
                "This organization already has a subscription, so this checkout was not "
                f"charged. Choose {checkout.plan_name} under Compare plans in Billing to change "
                "it; only the difference is charged.",
                field="plan_key",
            )
    outcomes = []
    for event in provider.checkout_events(checkout, billing_name=name):
        payload = _json_bytes(event)
        outcomes.append(
            webhook_receive(
                payload=payload, signature_header=provider.sign(payload), provider=provider
            )
        )
    return outcomes


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
