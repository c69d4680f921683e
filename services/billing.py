"""Billing: checkout (upgrades, top-ups, billing profile), portal, spend controls, pools,
the Billing page read model, and webhook fulfilment.

Fulfilment and idempotency
--------------------------
Every effect of a payment arrives as a provider event (Stripe webhooks, or the same JSON
produced and signed by the local payment mode) and goes through `webhook_receive`:
verify the signature -> `webhook_handle` in one transaction -> commit.

* `webhook_handle` first inserts the event id into ``ProcessedWebhookEvent`` (unique on
  provider + event id) inside a SAVEPOINT, *in the same transaction as the effect*. A
  redelivery finds the row and is a no-op; a concurrent delivery blocks on the unique
  index until the first commits and then fails the insert (no-op), or proceeds if the
  first rolled back. A failure while applying rolls the whole transaction back, so the
  event is not marked processed and the provider's retry applies it: nothing is lost.
* Credits carry their own idempotency keys: ``checkout:<session id>:top_up`` for a top-up
  and ``invoice:<invoice id>:grant`` for the monthly grant. Different events about the
  same payment (``invoice.paid`` and ``invoice.payment_succeeded``; ``checkout.session.
  completed`` and ``...async_payment_succeeded``) therefore grant exactly once.
* Monthly credits come only from paid subscription invoices, never from the checkout
  session, so ``invoice.paid`` before ``checkout.session.completed`` still grants once.
* Subscription state (plan, status, period) is applied only from events not older than
  ``Subscription.last_event_at``; older ones are recorded and ignored. Per org, effects
  are serialized by a row lock on the organization.
* ``customer.subscription.deleted`` and an ``unpaid`` status set the status ``expired``:
  execution is locked by the policy while read access remains.

Transactions: functions taking ``session`` flush and never commit, except
`webhook_receive` and `local_checkout_confirm`, which own their unit of work.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import crypto, db
from core.clock import as_utc, utcnow
from core.settings import get_settings
from models import (
    AIModel,
    CreditLedgerEntry,
    Invoice,
    Organization,
    ProcessedWebhookEvent,
    Project,
    Subscription,
    Tool,
    User,
)
from models.enums import (
    EXECUTABLE_SUBSCRIPTION_STATUSES,
    LedgerEntryKind,
    Modality,
    SubscriptionStatus,
)
from services import credits, policy, pricing
from services.audit import audit_record
from services.catalog import CATALOG_DIR, plan_get, plans_list
from services.error_codes import Code
from services.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    error_with_code,
)
from services.orgs import org_plan, plan_usage
from services.providers.payments import (
    CheckoutRequest,
    CheckoutSession,
    LocalPaymentProvider,
    PaymentProviderError,
    PortalUnavailable,
    StripeProvider,
    WebhookSignatureError,
    payment_provider,
)

FREE_PLAN_KEY = "free"
PROVIDER_STRIPE = "stripe"  # local mode records its events under the same provider name
MAX_SPEND_CAP_CREDITS = 10_000_000
MC = credits.MILLICREDITS_PER_CREDIT

_STATUS_LABELS = {
    "active": "Active",
    "trialing": "Trial",
    "past_due": "Payment overdue",
    "unpaid": "Unpaid",
    "canceled": "Canceled",
    "expired": "Expired",
    "incomplete": "Awaiting payment",
}


# --- catalog --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopUpTerms:
    """How credits are sold: blocks of `block_credits` at `block_price_cents` each."""

    block_credits: int
    block_price_cents: int
    max_blocks: int
    currency: str

    def describe(self) -> str:
        return (
            f"Credits are sold in blocks of {self.block_credits} "
            f"({format_money(self.block_price_cents, self.currency)} per block)."
        )


@lru_cache(maxsize=4)
def _billing_catalog(path: str) -> dict[str, Any]:
    with open(path, "rb") as handle:
        return tomllib.load(handle).get("billing", {})


def top_up_terms() -> TopUpTerms:
    """The top-up block size and price from catalog/plans.toml ([billing])."""
    data = _billing_catalog(str(CATALOG_DIR / "plans.toml"))
    return TopUpTerms(
        block_credits=int(data.get("top_up_block_credits", 10)),
        block_price_cents=int(data.get("top_up_block_price_cents", 100)),
        max_blocks=int(data.get("top_up_max_blocks", 1000)),
        currency=str(data.get("currency", "usd")),
    )


def format_money(cents: int, currency: str = "usd") -> str:
    symbol = "$" if currency.lower() == "usd" else currency.upper() + " "
    return f"{symbol}{cents / 100:,.2f}"


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


# --- helpers --------------------------------------------------------------------------------


def _org(session: Session, org_id: int, *, lock: bool = False) -> Organization:
    query = select(Organization).where(Organization.id == org_id)
    if lock:
        query = query.with_for_update()
    org = session.exec(query.execution_options(populate_existing=True)).first()
    if org is None or org.deleted_at is not None:
        raise error_with_code(
            Code.org_not_found, "This organization does not exist or was deleted.", base=NotFound
        )
    return org


def _require_owner(session: Session, actor: User, org_id: int) -> Organization:
    policy.require(
        policy.actor_for(session=session, user=actor, org_id=org_id),
        policy.Action.billing_manage,
        policy.target_for(session=session, org_id=org_id),
    )
    return _org(session, org_id)


def _subscription(session: Session, org_id: int) -> Subscription | None:
    return session.exec(
        select(Subscription)
        .where(Subscription.org_id == org_id)
        .execution_options(populate_existing=True)
    ).first()


def _ts(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _id(value: Any) -> str | None:
    """A Stripe reference that may be an id string or an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value else None


def payments_mode() -> str:
    return get_settings().payments_mode


# --- free plan: billing profile -------------------------------------------------------------


def billing_profile_required(org: Organization) -> bool:
    """True when the org is on the Free plan and has not added a billing profile yet."""
    return org.plan_key == FREE_PLAN_KEY and org.billing_profile_added_at is None


def billing_profile_require(org: Organization) -> None:
    """Raise `billing_required` for a Free org without a billing profile (the studio calls this).

    Raises:
        DomainError: code "billing_required" (HTTP 402).
    """
    if billing_profile_required(org):
        raise error_with_code(
            Code.billing_required,
            "Add a billing profile in Billing before using models (Free plan). "
            "It takes a minute and nothing is charged until you buy credits or upgrade.",
            base=PermissionDenied,
            http_status=402,
        )


def _billing_profile_mark(org: Organization, when: datetime) -> None:
    if org.billing_profile_added_at is None:
        org.billing_profile_added_at = when


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
            success_url=f"{billing_url}?checkout=success",
            cancel_url=f"{billing_url}?checkout=canceled",
            local_checkout_path=_path_of(billing_url) + "/local-checkout",
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


def _path_of(url: str) -> str:
    if "://" in url:
        rest = url.split("://", 1)[1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return url


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
    return LocalCheckoutView(
        checkout_id=checkout.id,
        purpose=checkout.purpose,
        title=title,
        lines=lines,
        amount=money,
        success_url=checkout.success_url,
        cancel_url=checkout.cancel_url,
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


# --- webhooks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookOutcome:
    event_id: str
    event_type: str
    duplicate: bool
    effect: str  # what happened, e.g. "credits_purchased", "ignored:stale"


def webhook_receive(*, payload: bytes, signature_header: str, provider=None) -> WebhookOutcome:
    """Verify a webhook and fulfil it in its own transaction (commits).

    Raises:
        WebhookSignatureError: bad signature or stale timestamp (nothing is recorded).
    """
    provider = provider or payment_provider()
    event = provider.webhook_verify(payload=payload, signature_header=signature_header)
    with db.session_scope() as session:
        return webhook_handle(session=session, provider=PROVIDER_STRIPE, event=event)


def webhook_handle(*, session: Session, provider: str, event: dict) -> WebhookOutcome:
    """Apply one verified event exactly once (flushes; the caller commits).

    The event id is inserted into ProcessedWebhookEvent first, in this transaction, so a
    redelivery (sequential or concurrent) is a no-op and a failed effect leaves no record.
    """
    event_id = str(event.get("id") or "")
    event_type = str(event.get("type") or "")
    if not event_id or not event_type:
        raise ValidationFailed("The event has no id or type.")
    created = _ts(event.get("created")) or utcnow()
    if (
        session.exec(
            select(ProcessedWebhookEvent.id).where(
                ProcessedWebhookEvent.provider == provider,
                ProcessedWebhookEvent.event_id == event_id,
            )
        ).first()
        is not None
    ):
        return WebhookOutcome(event_id, event_type, True, "duplicate")
    record = ProcessedWebhookEvent(
        provider=provider,
        event_id=event_id,
        event_type=event_type,
        event_created_at=created,
        payload=event,
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        return WebhookOutcome(event_id, event_type, True, "duplicate")
    obj = (event.get("data") or {}).get("object") or {}
    handler = _HANDLERS.get(event_type)
    effect = handler(session, obj, created) if handler is not None else "ignored:unhandled_type"
    return WebhookOutcome(event_id, event_type, False, effect)


def _org_for(session: Session, obj: dict) -> Organization | None:
    """The org an event is about: by customer id, else by the metadata we attached."""
    customer_id = _id(obj.get("customer"))
    org = None
    if customer_id:
        org = session.exec(
            select(Organization).where(Organization.stripe_customer_id == customer_id)
        ).first()
    if org is None:
        metadata = _metadata(obj)
        raw = metadata.get("org_id") or obj.get("client_reference_id")
        if raw and str(raw).isdigit():
            org = session.get(Organization, int(raw))
            if (
                org is not None
                and customer_id
                and org.stripe_customer_id not in (None, customer_id)
            ):
                org = None  # metadata and customer disagree: do not guess
            elif org is not None and customer_id and org.stripe_customer_id is None:
                org.stripe_customer_id = customer_id
    if org is None or org.deleted_at is not None:
        return None
    # Serialize this org's billing effects (invoice.paid vs payment_succeeded, etc.).
    return _org(session, org.id, lock=True)


def _metadata(obj: dict) -> dict:
    """Our metadata on a session/subscription/invoice (invoices carry it on their parent)."""
    merged: dict = {}
    parent = (obj.get("parent") or {}).get("subscription_details") or {}
    for source in (
        obj.get("subscription_details") or {},
        parent,
        *[line for line in ((obj.get("lines") or {}).get("data") or [])],
    ):
        merged |= source.get("metadata") or {}
    merged |= obj.get("metadata") or {}
    return merged


def _plan_key_from(session: Session, obj: dict) -> str | None:
    """The catalog plan an event names: our metadata, a price/plan's metadata, or a price id."""
    candidates: list[str] = []
    metadata = _metadata(obj)
    if metadata.get("plan_key"):
        candidates.append(str(metadata["plan_key"]))
    items = ((obj.get("items") or {}).get("data") or []) + (
        (obj.get("lines") or {}).get("data") or []
    )
    price_ids: list[str] = []
    for item in items:
        for priced in (item.get("price"), item.get("plan")):
            if isinstance(priced, dict):
                if (priced.get("metadata") or {}).get("plan_key"):
                    candidates.append(str(priced["metadata"]["plan_key"]))
                if priced.get("lookup_key"):
                    candidates.append(str(priced["lookup_key"]))
                if priced.get("id"):
                    price_ids.append(str(priced["id"]))
    known = {plan.key: plan for plan in plans_list(session=session)}
    for key in candidates:
        if key in known:
            return key
    for plan in known.values():
        if plan.stripe_price_id and plan.stripe_price_id in price_ids:
            return plan.key
    return None


def _subscription_for_update(session: Session, org: Organization) -> Subscription:
    subscription = _subscription(session, org.id)
    if subscription is None:
        subscription = Subscription(org_id=org.id, plan_key=org.plan_key, status="active")
        session.add(subscription)
        session.flush()
    return subscription


def _is_stale(subscription: Subscription, event_at: datetime) -> bool:
    last = as_utc(subscription.last_event_at)
    return last is not None and event_at < last


def _set_plan(
    session: Session, org: Organization, subscription: Subscription, plan_key: str
) -> None:
    subscription.plan_key = plan_key
    org.plan_key = plan_key
    session.add(org)


def _on_checkout_completed(session: Session, obj: dict, event_at: datetime) -> str:
    org = _org_for(session, obj)
    if org is None:
        return "ignored:unknown_customer"
    metadata = obj.get("metadata") or {}
    mode = obj.get("mode")
    purpose = metadata.get("purpose") or {"payment": "top_up", "subscription": "upgrade"}.get(
        mode, "billing_profile"
    )
    if purpose == "billing_profile" or mode == "setup":
        _billing_profile_mark(org, event_at)
        return "billing_profile_added"
    if obj.get("payment_status") not in ("paid", "no_payment_required"):
        return "awaiting_payment"  # async payment methods: fulfilled by async_payment_succeeded
    _billing_profile_mark(org, event_at)
    session_id = str(obj.get("id"))
    if purpose == "top_up":
        credits_bought = int(str(metadata.get("credits") or "0") or 0)
        if credits_bought <= 0:
            return "ignored:no_credits"
        credits.credits_grant(
            session=session,
            org_id=org.id,
            amount_millicredits=credits_bought * MC,
            idempotency_key=f"checkout:{session_id}:top_up",
            kind=LedgerEntryKind.purchase,
            reference=session_id,
            memo=f"Top-up: {credits_bought:,} credits ({metadata.get('blocks', '?')} blocks)",
        )
        _invoice_upsert(
            session,
            org_id=org.id,
            provider_invoice_id=_id(obj.get("invoice")) or session_id,
            kind="top_up",
            status="paid",
            amount_cents=int(obj.get("amount_total") or 0),
            currency=str(obj.get("currency") or "usd"),
            credits=credits_bought,
            created_at=event_at,
        )
        return "credits_purchased"
    plan_key = _plan_key_from(session, obj)
    if plan_key is None:
        return "ignored:unknown_plan"
    subscription = _subscription_for_update(session, org)
    if _is_stale(subscription, event_at):
        return "ignored:stale"
    _set_plan(session, org, subscription, plan_key)
    subscription.stripe_subscription_id = _id(obj.get("subscription"))
    subscription.status = SubscriptionStatus.active.value
    subscription.cancel_at_period_end = False
    subscription.last_event_at = event_at
    subscription.updated_at = utcnow()
    session.add(subscription)
    audit_record(
        session=session,
        action="billing.plan_changed",
        actor_user_id=None,
        org_id=org.id,
        target_type="subscription",
        target_id=subscription.id,
        details={"plan": plan_key, "source": "checkout", "checkout": session_id},
    )
    return "plan_changed"


def _invoice_upsert(
    session: Session, *, org_id: int, provider_invoice_id: str, **values
) -> Invoice:
    invoice = session.exec(
        select(Invoice).where(Invoice.provider_invoice_id == provider_invoice_id)
    ).first()
    if invoice is None:
        invoice = Invoice(org_id=org_id, provider_invoice_id=provider_invoice_id, **values)
    else:
        values.pop("created_at", None)  # keep the first time we saw it
        if invoice.status == "paid":
            values.pop("status", None)  # a late failure never un-pays an invoice
        for key, value in values.items():
            setattr(invoice, key, value)
    session.add(invoice)
    session.flush()
    return invoice


def _invoice_subscription_id(obj: dict) -> str | None:
    parent = (obj.get("parent") or {}).get("subscription_details") or {}
    return _id(obj.get("subscription")) or _id(parent.get("subscription"))


def _invoice_period(obj: dict) -> tuple[datetime | None, datetime | None]:
    for line in (obj.get("lines") or {}).get("data") or []:
        period = line.get("period") or {}
        if period.get("start") and period.get("end"):
            return _ts(period["start"]), _ts(period["end"])
    return _ts(obj.get("period_start")), _ts(obj.get("period_end"))


def _adoptable(subscription: Subscription, subscription_id: str | None) -> bool:
    return bool(subscription_id) and subscription.stripe_subscription_id in (None, subscription_id)


def _on_invoice_paid(session: Session, obj: dict, event_at: datetime) -> str:
    org = _org_for(session, obj)
    if org is None:
        return "ignored:unknown_customer"
    invoice_id = str(obj.get("id"))
    subscription_id = _invoice_subscription_id(obj)
    period_start, period_end = _invoice_period(obj)
    plan_key = _plan_key_from(session, obj) if subscription_id else None
    plan = plan_get(session=session, key=plan_key) if plan_key else None
    granted = plan.monthly_credits if plan is not None else 0
    _invoice_upsert(
        session,
        org_id=org.id,
        provider_invoice_id=invoice_id,
        kind="subscription" if subscription_id else "top_up",
        status="paid",
        amount_cents=int(obj.get("amount_paid") or obj.get("total") or 0),
        currency=str(obj.get("currency") or "usd"),
        credits=granted,
        hosted_url=str(obj.get("hosted_invoice_url") or "")[:1000],
        period_start=period_start,
        period_end=period_end,
        created_at=event_at,
    )
    if not subscription_id:
        return "invoice_recorded"
    if plan is None:
        return "ignored:unknown_plan"
    if granted > 0:
        credits.credits_grant(
            session=session,
            org_id=org.id,
            amount_millicredits=granted * MC,
            idempotency_key=f"invoice:{invoice_id}:grant",
            kind=LedgerEntryKind.grant,
            reference=invoice_id,
            memo=f"{plan.name} monthly credits",
        )
    _billing_profile_mark(org, event_at)
    subscription = _subscription_for_update(session, org)
    if not _is_stale(subscription, event_at) and (
        _adoptable(subscription, subscription_id)
        or subscription.status not in EXECUTABLE_SUBSCRIPTION_STATUSES
    ):
        _set_plan(session, org, subscription, plan.key)
        subscription.stripe_subscription_id = subscription_id
        subscription.status = SubscriptionStatus.active.value
        subscription.current_period_start = period_start or subscription.current_period_start
        subscription.current_period_end = period_end or subscription.current_period_end
        subscription.last_event_at = event_at
        subscription.updated_at = utcnow()
        session.add(subscription)
    return "monthly_credits_granted"


def _on_invoice_failed(session: Session, obj: dict, event_at: datetime) -> str:
    org = _org_for(session, obj)
    if org is None:
        return "ignored:unknown_customer"
    subscription_id = _invoice_subscription_id(obj)
    period_start, period_end = _invoice_period(obj)
    _invoice_upsert(
        session,
        org_id=org.id,
        provider_invoice_id=str(obj.get("id")),
        kind="subscription" if subscription_id else "top_up",
        status="failed",
        amount_cents=int(obj.get("amount_due") or obj.get("total") or 0),
        currency=str(obj.get("currency") or "usd"),
        hosted_url=str(obj.get("hosted_invoice_url") or "")[:1000],
        period_start=period_start,
        period_end=period_end,
        created_at=event_at,
    )
    subscription = _subscription(session, org.id)
    if subscription is None or not subscription_id:
        return "invoice_recorded"
    if subscription.stripe_subscription_id != subscription_id or _is_stale(subscription, event_at):
        return "ignored:stale"
    if subscription.status in (SubscriptionStatus.active.value, SubscriptionStatus.trialing.value):
        subscription.status = SubscriptionStatus.past_due.value
    subscription.last_event_at = event_at
    subscription.updated_at = utcnow()
    session.add(subscription)
    return "past_due"


_STATUS_FROM_STRIPE = {
    "active": SubscriptionStatus.active,
    "trialing": SubscriptionStatus.trialing,
    "past_due": SubscriptionStatus.past_due,
    "incomplete": SubscriptionStatus.incomplete,
    "unpaid": SubscriptionStatus.expired,
    "canceled": SubscriptionStatus.expired,
    "incomplete_expired": SubscriptionStatus.expired,
    "paused": SubscriptionStatus.expired,
}


def _on_subscription_changed(
    session: Session, obj: dict, event_at: datetime, *, deleted: bool
) -> str:
    org = _org_for(session, obj)
    if org is None:
        return "ignored:unknown_customer"
    subscription_id = _id(obj.get("id"))
    status = (
        SubscriptionStatus.expired
        if deleted
        else _STATUS_FROM_STRIPE.get(str(obj.get("status")), SubscriptionStatus.incomplete)
    )
    subscription = _subscription_for_update(session, org)
    if _is_stale(subscription, event_at):
        return "ignored:stale"
    if not _adoptable(subscription, subscription_id):
        # Another subscription replaced this one: only a live newer one may take over.
        if deleted or status not in EXECUTABLE_SUBSCRIPTION_STATUSES:
            return "ignored:other_subscription"
    plan_key = _plan_key_from(session, obj)
    if plan_key is not None:
        _set_plan(session, org, subscription, plan_key)
    subscription.stripe_subscription_id = subscription_id
    subscription.status = status.value
    items = (obj.get("items") or {}).get("data") or [{}]
    subscription.current_period_start = (
        _ts(obj.get("current_period_start") or items[0].get("current_period_start"))
        or subscription.current_period_start
    )
    subscription.current_period_end = (
        _ts(obj.get("current_period_end") or items[0].get("current_period_end"))
        or subscription.current_period_end
    )
    subscription.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
    subscription.last_event_at = event_at
    subscription.updated_at = utcnow()
    session.add(subscription)
    audit_record(
        session=session,
        action="billing.subscription_updated",
        actor_user_id=None,
        org_id=org.id,
        target_type="subscription",
        target_id=subscription.id,
        details={"status": status.value, "plan": subscription.plan_key, "deleted": deleted},
    )
    return (
        "subscription_expired" if status == SubscriptionStatus.expired else "subscription_updated"
    )


_HANDLERS = {
    "checkout.session.completed": _on_checkout_completed,
    "checkout.session.async_payment_succeeded": _on_checkout_completed,
    "invoice.paid": _on_invoice_paid,
    "invoice.payment_succeeded": _on_invoice_paid,
    "invoice.payment_failed": _on_invoice_failed,
    "customer.subscription.created": lambda s, o, t: _on_subscription_changed(
        s, o, t, deleted=False
    ),
    "customer.subscription.updated": lambda s, o, t: _on_subscription_changed(
        s, o, t, deleted=False
    ),
    "customer.subscription.deleted": lambda s, o, t: _on_subscription_changed(
        s, o, t, deleted=True
    ),
}


# --- spend controls and pools ---------------------------------------------------------------


def _optional_credits(value: Any, *, field: str, label: str) -> int | None:
    text = "" if value is None else str(value).strip().replace(",", "")
    if text == "":
        return None
    if not text.isdigit():
        raise ValidationFailed(
            f"{label} must be a whole number of credits (or empty for none).", field=field
        )
    number = int(text)
    if number > MAX_SPEND_CAP_CREDITS:
        raise ValidationFailed(
            f"{label} must be at most {MAX_SPEND_CAP_CREDITS:,} credits.", field=field
        )
    return number


def spend_controls_set(
    *,
    session: Session,
    actor: User,
    org_id: int,
    monthly_cap_credits: Any,
    low_balance_alert_credits: Any,
) -> Organization:
    """Set (or clear with empty/None) the monthly spend cap and low-balance alert. Owner only.

    Raises:
        ValidationFailed: not a whole number >= 0 (cap >= 1), or above the maximum.
    """
    org = _require_owner(session, actor, org_id)
    cap = _optional_credits(monthly_cap_credits, field="monthly_cap", label="Monthly spend cap")
    alert = _optional_credits(
        low_balance_alert_credits, field="low_balance_alert", label="Low-balance alert"
    )
    if cap == 0:
        raise ValidationFailed(
            "A monthly spend cap of 0 would stop every run. Enter at least 1, or leave it empty for no cap.",
            field="monthly_cap",
        )
    before = {"cap": org.monthly_spend_cap_credits, "alert": org.low_balance_alert_credits}
    org.monthly_spend_cap_credits = cap
    org.low_balance_alert_credits = alert
    session.add(org)
    session.flush()
    audit_record(
        session=session,
        action="billing.spend_controls_changed",
        actor_user_id=actor.id,
        org_id=org.id,
        target_type="organization",
        target_id=org.id,
        details={"before": before, "after": {"cap": cap, "alert": alert}},
    )
    return org


def _pool_amount(value: Any) -> int:
    text = str(value if value is not None else "").strip().replace(",", "")
    try:
        millicredits = int(round(float(text) * MC)) if text else 0
    except (ValueError, OverflowError):  # "abc", "inf", "nan"
        millicredits = 0
    if millicredits <= 0:
        raise ValidationFailed("Enter a positive number of credits.", field="credits")
    return millicredits


def _project_in_org(session: Session, org_id: int, project_id: Any) -> Project:
    try:
        project = session.get(Project, int(project_id))
    except (TypeError, ValueError):
        project = None
    if project is None or project.org_id != org_id:
        raise ValidationFailed("Pick a project of this organization.", field="project_id")
    return project


def pool_allocate_credits(
    *,
    session: Session,
    actor: User,
    org_id: int,
    project_id: Any,
    credits_amount: Any,
    request_id: str,
) -> CreditLedgerEntry:
    """Earmark credits for a project (owner only, audited). `request_id` makes a retry safe."""
    _require_owner(session, actor, org_id)
    project = _project_in_org(session, org_id, project_id)
    amount = _pool_amount(credits_amount)
    entry = credits.pool_allocate(
        session=session,
        org_id=org_id,
        project_id=project.id,
        amount_millicredits=amount,
        idempotency_key=f"pool:{org_id}:{project.id}:allocate:{request_id}",
        actor_user_id=actor.id,
    )
    audit_record(
        session=session,
        action="billing.pool_allocated",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="project",
        target_id=project.id,
        details={"credits": credits.format_credits(amount)},
    )
    return entry


def pool_return_credits(
    *, session: Session, actor: User, org_id: int, project_id: Any, request_id: str
) -> CreditLedgerEntry:
    """Return all of a project's pooled credits to the general balance (owner only, audited)."""
    _require_owner(session, actor, org_id)
    project = _project_in_org(session, org_id, project_id)
    entry = credits.pool_return(
        session=session,
        org_id=org_id,
        project_id=project.id,
        idempotency_key=f"pool:{org_id}:{project.id}:return:{request_id}",
        actor_user_id=actor.id,
    )
    audit_record(
        session=session,
        action="billing.pool_returned",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="project",
        target_id=project.id,
        details={"credits": credits.format_credits(-entry.pool_amount_millicredits)},
    )
    return entry


# --- read models ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanOffer:
    key: str
    name: str
    price: str
    monthly_credits: str
    seats: str
    projects: str
    features: list[str]
    rank: int
    current: bool
    purchasable: bool


@dataclass(frozen=True)
class PoolView:
    project_id: int
    project_name: str
    credits: str


@dataclass(frozen=True)
class InvoiceView:
    id: str
    date: str
    kind: str
    status: str
    amount: str
    credits: str
    url: str


@dataclass(frozen=True)
class BillingOverview:
    payments_mode: str
    plan_key: str
    plan_name: str
    plan_price: str
    status: str
    status_label: str
    executable: bool
    renewal: str
    cancel_at_period_end: bool
    balance_millicredits: int
    pooled_millicredits: int
    available_millicredits: int
    pools: list[PoolView]
    seats_used: int
    seats_allowed: int | None
    cycle_start: str
    usage_this_cycle_millicredits: int
    monthly_cap_credits: int | None
    low_balance_alert_credits: int | None
    low_balance: bool
    billing_profile_added: bool
    billing_profile_required: bool
    invoices: list[InvoiceView]
    plans: list[PlanOffer]
    top_up: TopUpTerms
    projects: list[tuple[int, str]] = field(default_factory=list)


def _cycle_start(subscription: Subscription | None) -> datetime:
    start = as_utc(subscription.current_period_start) if subscription else None
    if start is not None and start <= utcnow():
        return start
    now = utcnow()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spend_this_cycle(*, session: Session, org_id: int, since: datetime | None = None) -> int:
    """Millicredits spent since the cycle start: holds minus their settle/release returns."""
    if since is None:
        since = _cycle_start(_subscription(session, org_id))
    total = session.exec(
        select(func.coalesce(func.sum(CreditLedgerEntry.amount_millicredits), 0)).where(
            CreditLedgerEntry.org_id == org_id,
            col(CreditLedgerEntry.kind).in_(
                [
                    LedgerEntryKind.hold.value,
                    LedgerEntryKind.settle.value,
                    LedgerEntryKind.release.value,
                ]
            ),
            CreditLedgerEntry.created_at >= since,
        )
    ).one()
    return max(-int(total), 0)


def _limit_text(value: int | None) -> str:
    return "Unlimited" if value is None else f"{value:,}"


def billing_overview(*, session: Session, org_id: int) -> BillingOverview:
    """Everything the Billing page shows, as plain values (no rows, no secrets)."""
    org = _org(session, org_id)
    plan = org_plan(session=session, org_id=org_id)
    subscription = _subscription(session, org_id)
    status = subscription.status if subscription else SubscriptionStatus.active.value
    balance = credits.balance_get(session=session, org_id=org_id)
    usage = plan_usage(session=session, org_id=org_id)
    cycle_start = _cycle_start(subscription)
    renewal = as_utc(subscription.current_period_end) if subscription else None
    projects = {
        p.id: p.name
        for p in session.exec(
            select(Project).where(Project.org_id == org_id).order_by(col(Project.name))
        )
    }
    pools = [
        PoolView(
            project_id=pool.project_id,
            project_name=projects.get(pool.project_id, f"Project {pool.project_id}"),
            credits=credits.format_credits(pool.balance_millicredits),
        )
        for pool in credits.pools_list(session=session, org_id=org_id)
        if pool.balance_millicredits
    ]
    invoices = [
        InvoiceView(
            id=invoice.provider_invoice_id,
            date=as_utc(invoice.created_at).strftime("%Y-%m-%d"),
            kind="Subscription" if invoice.kind == "subscription" else "Credit top-up",
            status=invoice.status.capitalize(),
            amount=format_money(invoice.amount_cents, invoice.currency),
            credits=f"{invoice.credits:,}" if invoice.credits else "",
            url=invoice.hosted_url,
        )
        for invoice in session.exec(
            select(Invoice)
            .where(Invoice.org_id == org_id)
            .order_by(col(Invoice.created_at).desc(), col(Invoice.id).desc())
            .limit(50)
        )
    ]
    offers = [
        PlanOffer(
            key=p.key,
            name=p.name,
            price="Free"
            if p.price_cents_monthly == 0
            else f"{format_money(p.price_cents_monthly)}/mo",
            monthly_credits=f"{p.monthly_credits:,}",
            seats=_limit_text(p.max_seats),
            projects=_limit_text(p.max_projects),
            features=list(p.features or []),
            rank=p.rank,
            current=p.key == plan.key,
            purchasable=p.price_cents_monthly > 0
            and (p.key != plan.key or status not in EXECUTABLE_SUBSCRIPTION_STATUSES),
        )
        for p in plans_list(session=session)
        if p.is_public
    ]
    alert = org.low_balance_alert_credits
    return BillingOverview(
        payments_mode=payments_mode(),
        plan_key=plan.key,
        plan_name=plan.name,
        plan_price="Free"
        if plan.price_cents_monthly == 0
        else f"{format_money(plan.price_cents_monthly)}/month",
        status=status,
        status_label=_STATUS_LABELS.get(status, status.replace("_", " ").capitalize()),
        executable=status in EXECUTABLE_SUBSCRIPTION_STATUSES,
        renewal=renewal.strftime("%Y-%m-%d") if renewal else "",
        cancel_at_period_end=bool(subscription and subscription.cancel_at_period_end),
        balance_millicredits=balance.balance,
        pooled_millicredits=balance.pooled,
        available_millicredits=balance.available_general,
        pools=pools,
        seats_used=usage["seats"]["used"],
        seats_allowed=usage["seats"]["allowed"],
        cycle_start=cycle_start.strftime("%Y-%m-%d"),
        usage_this_cycle_millicredits=spend_this_cycle(
            session=session, org_id=org_id, since=cycle_start
        ),
        monthly_cap_credits=org.monthly_spend_cap_credits,
        low_balance_alert_credits=alert,
        low_balance=alert is not None and balance.balance < alert * MC,
        billing_profile_added=org.billing_profile_added_at is not None,
        billing_profile_required=billing_profile_required(org),
        invoices=invoices,
        plans=offers,
        top_up=top_up_terms(),
        projects=list(projects.items()),
    )


@dataclass(frozen=True)
class ModelRate:
    name: str
    modality: str
    rate: str
    unit: str
    min_plan: str


@dataclass(frozen=True)
class ToolRate:
    name: str
    model: str
    credits: str


_UNIT_LABEL = {
    Modality.text.value: "per 1K tokens",
    Modality.image.value: "per image",
    Modality.video.value: "per second of video",
}


def credit_rates(*, session: Session) -> tuple[list[ModelRate], list[ToolRate]]:
    """Model rates by modality and each tool's credits per standard run (from the catalog)."""
    plan_names = {p.key: p.name for p in plans_list(session=session)}
    models = list(
        session.exec(
            select(AIModel).order_by(
                col(AIModel.modality), col(AIModel.sort_order), col(AIModel.display_name)
            )
        )
    )
    rates = [
        ModelRate(
            name=m.display_name,
            modality=m.modality,
            rate=credits.format_credits(m.rate_millicredits),
            unit=_UNIT_LABEL.get(m.modality, m.rate_unit),
            min_plan=plan_names.get(m.min_plan_key, m.min_plan_key),
        )
        for m in models
    ]
    by_key = {m.key: m for m in models}
    tools = []
    for tool in session.exec(select(Tool).order_by(col(Tool.sort_order), col(Tool.name))):
        model = by_key.get(tool.default_model_key)
        if model is None:
            continue
        tools.append(
            ToolRate(
                name=tool.name,
                model=model.display_name,
                credits=credits.format_credits(pricing.tool_standard_credits(tool, model)),
            )
        )
    return rates, tools


__all__ = [
    "BillingOverview",
    "StripeProvider",
    "WebhookOutcome",
    "WebhookSignatureError",
    "billing_overview",
    "billing_profile_require",
    "billing_profile_required",
    "checkout_start",
    "credit_rates",
    "local_checkout_confirm",
    "local_checkout_view",
    "pool_allocate_credits",
    "pool_return_credits",
    "portal_start",
    "spend_controls_set",
    "spend_this_cycle",
    "top_up_quote",
    "top_up_terms",
    "webhook_handle",
    "webhook_receive",
]
