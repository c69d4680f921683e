"""Webhook fulfilment: every effect of a payment arrives here as a provider event.

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

Transactions: `webhook_receive` owns its unit of work (`core.db.session_scope()`: verify,
handle, commit); `webhook_handle` and the ``_on_*`` handlers flush inside the caller's
transaction and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core import db
from core.clock import as_utc, utcnow
from models import Invoice, Organization, ProcessedWebhookEvent, Subscription
from models.enums import EXECUTABLE_SUBSCRIPTION_STATUSES, LedgerEntryKind, SubscriptionStatus
from services import credits
from services.audit import audit_record
from services.billing.common import (
    MC,
    PROVIDER_STRIPE,
    _billing_profile_mark,
    _id,
    _org,
    _subscription,
    _ts,
)
from services.catalog import plan_get, plans_list
from services.errors import ValidationFailed
from services.providers.payments import payment_provider

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
