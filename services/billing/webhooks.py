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
* A verified event that cannot be applied (a field of the wrong shape such as
  ``metadata.credits = "lots"``, a missing id, a subscription or invoice that belongs to
  another organization) is recorded with ``outcome = "ignored:<reason>: <detail>"`` and
  nothing of it is applied: its effect runs in a SAVEPOINT that is rolled back. Retrying
  such an event could never succeed, so it is answered as received; only failures that a
  retry may cure (the database, a bug raising something else) leave no record.
* Every recorded event keeps its ``outcome``: the effect applied or why it was ignored.

Transactions: `webhook_receive` owns its unit of work (`core.db.session_scope()`: verify,
handle, commit); `webhook_handle` and the ``_on_*`` handlers flush inside the caller's
transaction and never commit.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import db
from core.clock import as_utc, utcnow
from models import Invoice, Organization, ProcessedWebhookEvent, Subscription
from models.enums import EXECUTABLE_SUBSCRIPTION_STATUSES, LedgerEntryKind, SubscriptionStatus
from services import credits
from services.audit import audit_record
from services.billing.common import (
    DEFAULT_PERIOD_SECONDS,
    FREE_PLAN_KEY,
    MC,
    PROVIDER_STRIPE,
    _billing_profile_mark,
    _org,
    _subscription,
    _ts,
    monthly_credits_expire,
    plan_change_grant_key,
    prorated_credits,
)
from services.catalog import plan_get, plans_list
from services.error_codes import Code
from services.errors import DomainError, ValidationFailed, error_with_code
from services.providers.payments import payment_provider

logger = logging.getLogger(__name__)

# Stripe ids are short ASCII words (evt_..., cs_..., in_..., sub_..., cus_...). The bound keeps
# idempotency keys such as "checkout:<id>:top_up" within their column.
_REF_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,180}")
_EVENT_ID_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
_EVENT_TYPE_PATTERN = re.compile(r"[\x21-\x7e]{1,100}")
_MAX_INT = 2**31 - 1  # integer columns (cents, credits, org ids)
_MAX_OUTCOME = 500


class EventNotApplicable(Exception):
    """A verified event whose content cannot be applied; retrying it would not change that."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# --- reading provider payloads (every field may have any shape) -------------------------------


def _object(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventNotApplicable("invalid_field", f"{where} is not an object")
    return value


def _array(value: Any, where: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EventNotApplicable("invalid_field", f"{where} is not a list")
    return [_object(item, f"{where}[]") for item in value]


def _ref(value: Any, where: str) -> str | None:
    """A Stripe reference (an id string or an expanded object with an id); None when absent."""
    if isinstance(value, dict):
        value = value.get("id")
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _REF_PATTERN.fullmatch(value):
        raise EventNotApplicable("invalid_field", f"{where} is {_show(value)}, not a Stripe id")
    return value


def _required_ref(obj: dict, field: str) -> str:
    value = _ref(obj.get(field), field)
    if value is None:
        raise EventNotApplicable("missing_field", f"the {field} is missing")
    return value


def _whole(value: Any, where: str, *, default: int | None = 0) -> int | None:
    """A whole number from a JSON number or a string of digits (metadata values are strings)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise EventNotApplicable("invalid_field", f"{where} is {_show(value)}, not a whole number")
    text = str(value).strip()
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise EventNotApplicable("invalid_field", f"{where} is {_show(value)}, not a whole number")
    if len(digits) > 10 or int(digits) > _MAX_INT:
        raise EventNotApplicable("invalid_field", f"{where} is {_show(value)}, which is too large")
    return int(text)


def _currency(value: Any) -> str:
    if value in (None, ""):
        return "usd"
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
        raise EventNotApplicable(
            "invalid_field", f"currency is {_show(value)}, not a 3-letter code"
        )
    return value.lower()


def _url(value: Any) -> str:
    return value[:1000] if isinstance(value, str) and "\x00" not in value else ""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _contains_nul(value: Any) -> bool:
    """PostgreSQL text cannot hold NUL characters; Stripe never sends them."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


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
        WebhookSignatureError: bad signature, stale timestamp, or a body that is not an event
            (nothing is recorded).
        DomainError: code "webhook_not_an_event" for an id or type no provider would send.
    """
    provider = provider or payment_provider()
    event = provider.webhook_verify(payload=payload, signature_header=signature_header)
    with db.session_scope() as session:
        return webhook_handle(session=session, provider=PROVIDER_STRIPE, event=event)


def webhook_handle(*, session: Session, provider: str, event: dict) -> WebhookOutcome:
    """Apply one verified event exactly once (flushes; the caller commits).

    The event id is inserted into ProcessedWebhookEvent first, in this transaction, so a
    redelivery (sequential or concurrent) is a no-op and a failed effect leaves no record.
    An event that cannot be applied is recorded with the reason and changes nothing else.

    Raises:
        DomainError: code "webhook_not_an_event" when the id or type is missing or is not
            the short text a provider sends (nothing is recorded).
    """
    event_id, event_type = event.get("id"), event.get("type")
    if not (
        isinstance(event_id, str)
        and _EVENT_ID_PATTERN.fullmatch(event_id)
        and isinstance(event_type, str)
        and _EVENT_TYPE_PATTERN.fullmatch(event_type)
    ):
        raise error_with_code(
            Code.webhook_not_an_event,
            "The event has no usable id or type (short text, as Stripe sends); nothing was "
            "applied.",
            base=ValidationFailed,
            http_status=400,
        )
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
    effect = _apply(session, event, event_type, created)
    if effect.startswith("ignored:"):
        logger.warning("webhook %s (%s) %s", event_id, event_type, effect)
    record.outcome = effect[:_MAX_OUTCOME]
    session.add(record)
    session.flush()
    return WebhookOutcome(event_id, event_type, False, effect)


def _apply(session: Session, event: dict, event_type: str, created: datetime) -> str:
    """Run the event's handler in a SAVEPOINT; what it did, or "ignored:<reason>"."""
    handler = _HANDLERS.get(event_type)
    if handler is None:
        return "ignored:unhandled_type"
    try:
        if _contains_nul(event):
            raise EventNotApplicable("invalid_field", "the event contains NUL characters")
        obj = _object(_object(event.get("data"), "data").get("object"), "data.object")
        if not obj:
            raise EventNotApplicable("missing_field", "data.object is missing")
        with session.begin_nested():
            return handler(session, obj, created)
    except EventNotApplicable as exc:
        return f"ignored:{exc}"
    except DomainError as exc:  # e.g. an amount the ledger refuses, a key used for other credits
        return f"ignored:{exc.code}: {exc}"
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # A shape the readers above do not check yet: the same event would fail again on every
        # retry, so it is recorded as ignored; the log keeps the trace to fix the reader.
        logger.exception("webhook payload could not be read")
        return f"ignored:malformed: {type(exc).__name__}: {exc}"


def _org_for(session: Session, obj: dict) -> Organization | None:
    """The org an event is about: by customer id, else by the metadata we attached."""
    customer_id = _ref(obj.get("customer"), "customer")
    org = None
    if customer_id:
        org = session.exec(
            select(Organization).where(Organization.stripe_customer_id == customer_id)
        ).first()
    if org is None:
        metadata = _metadata(obj)
        raw = metadata.get("org_id") or obj.get("client_reference_id")
        if isinstance(raw, str | int) and str(raw).isdigit() and 0 < int(raw) <= _MAX_INT:
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
    parent = _object(_object(obj.get("parent"), "parent").get("subscription_details"), "parent")
    for where, source in (
        ("subscription_details", _object(obj.get("subscription_details"), "subscription_details")),
        ("parent.subscription_details", parent),
        *(("lines.data[]", line) for line in _lines(obj)),
    ):
        merged |= _object(source.get("metadata"), f"{where}.metadata")
    merged |= _object(obj.get("metadata"), "metadata")
    return merged


def _lines(obj: dict) -> list[dict]:
    return _array(_object(obj.get("lines"), "lines").get("data"), "lines.data")


def _items(obj: dict) -> list[dict]:
    return _array(_object(obj.get("items"), "items").get("data"), "items.data")


def _plan_key_from(session: Session, obj: dict) -> str | None:
    """The catalog plan an event names: our metadata, a price/plan's metadata, or a price id."""
    candidates: list[str] = []
    metadata = _metadata(obj)
    if metadata.get("plan_key"):
        candidates.append(str(metadata["plan_key"]))
    price_ids: list[str] = []
    for item in _items(obj) + _lines(obj):
        for priced in (item.get("price"), item.get("plan")):
            if isinstance(priced, dict):
                priced_metadata = _object(priced.get("metadata"), "price.metadata")
                if priced_metadata.get("plan_key"):
                    candidates.append(str(priced_metadata["plan_key"]))
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


def _refuse_foreign_subscription(session: Session, org: Organization, subscription_id: str | None):
    """An event may only name a subscription of the org it is about (or a new one)."""
    if not subscription_id:
        return
    owner_org_id = session.exec(
        select(Subscription.org_id).where(Subscription.stripe_subscription_id == subscription_id)
    ).first()
    if owner_org_id is not None and owner_org_id != org.id:
        raise EventNotApplicable(
            "other_organization",
            f"subscription {subscription_id} belongs to another organization than customer "
            f"{org.stripe_customer_id or '(none)'}",
        )


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
    session_id = _required_ref(obj, "id")
    org = _org_for(session, obj)
    if org is None:
        return "ignored:unknown_customer"
    metadata = _object(obj.get("metadata"), "metadata")
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
    if purpose == "top_up":
        credits_bought = _whole(metadata.get("credits"), "metadata.credits")
        blocks = _whole(metadata.get("blocks"), "metadata.blocks", default=None)
        amount_cents = _whole(obj.get("amount_total"), "amount_total")
        currency = _currency(obj.get("currency"))
        invoice_id = _ref(obj.get("invoice"), "invoice") or session_id
        if credits_bought <= 0:
            return "ignored:no_credits"
        credits.credits_grant(
            session=session,
            org_id=org.id,
            amount_millicredits=credits_bought * MC,
            idempotency_key=f"checkout:{session_id}:top_up",
            kind=LedgerEntryKind.purchase,
            reference=session_id,
            memo=f"Top-up: {credits_bought:,} credits ({blocks if blocks else '?'} blocks)",
        )
        _invoice_upsert(
            session,
            org_id=org.id,
            provider_invoice_id=invoice_id,
            kind="top_up",
            status="paid",
            amount_cents=amount_cents,
            currency=currency,
            credits=credits_bought,
            created_at=event_at,
        )
        return "credits_purchased"
    subscription_id = _ref(obj.get("subscription"), "subscription")
    _refuse_foreign_subscription(session, org, subscription_id)
    plan_key = _plan_key_from(session, obj)
    if plan_key is None:
        return "ignored:unknown_plan"
    subscription = _subscription_for_update(session, org)
    if _is_stale(subscription, event_at):
        return "ignored:stale"
    _set_plan(session, org, subscription, plan_key)
    subscription.stripe_subscription_id = subscription_id
    subscription.status = SubscriptionStatus.active.value
    subscription.cancel_at_period_end = False
    subscription.scheduled_plan_key = None
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
        if invoice.org_id != org_id:
            raise EventNotApplicable(
                "other_organization",
                f"invoice {provider_invoice_id} belongs to another organization",
            )
        values.pop("created_at", None)  # keep the first time we saw it
        if invoice.status == "paid":
            values.pop("status", None)  # a late failure never un-pays an invoice
        for key, value in values.items():
            setattr(invoice, key, value)
    session.add(invoice)
    session.flush()
    return invoice


def _invoice_subscription_id(obj: dict) -> str | None:
    parent = _object(_object(obj.get("parent"), "parent").get("subscription_details"), "parent")
    return _ref(obj.get("subscription"), "subscription") or _ref(
        parent.get("subscription"), "parent.subscription_details.subscription"
    )


def _invoice_period(obj: dict) -> tuple[datetime | None, datetime | None]:
    for line in _lines(obj):
        period = _object(line.get("period"), "lines.data[].period")
        if period.get("start") and period.get("end"):
            return _ts(period["start"]), _ts(period["end"])
    return _ts(obj.get("period_start")), _ts(obj.get("period_end"))


def _adoptable(subscription: Subscription, subscription_id: str | None) -> bool:
    return bool(subscription_id) and subscription.stripe_subscription_id in (None, subscription_id)


def _is_proration(line: dict) -> bool:
    """A proration line, in the shape of older API versions (``proration``) or newer ones
    (``parent.subscription_item_details.proration``)."""
    parent = _object(line.get("parent"), "lines.data[].parent")
    details = _object(parent.get("subscription_item_details"), "lines.data[].parent")
    return line.get("proration") is True or details.get("proration") is True


def _proration_lines(obj: dict) -> list[dict]:
    return [line for line in _lines(obj) if _is_proration(line)]


def _line_plan_key(session: Session, line: dict) -> str | None:
    pricing = _object(line.get("pricing"), "lines.data[].pricing")
    price_details = _object(pricing.get("price_details"), "lines.data[].pricing.price_details")
    price = price_details.get("price")
    if isinstance(price, str) and "price" not in line:  # newer versions name the price here
        line = line | {"price": {"id": price}}
    return _plan_key_from(session, {"lines": {"data": [line]}})


def _on_proration_paid(
    session: Session,
    org: Organization,
    obj: dict,
    invoice_id: str,
    subscription_id: str,
    event_at: datetime,
) -> str:
    """An upgrade's invoice: the prorated difference. Tops the cycle's credits up pro rata,
    once per org, cycle and plan; the period (and the spend-cap window) stays."""
    charged = [
        line for line in _proration_lines(obj) if (_whole(line.get("amount"), "amount") or 0) > 0
    ]
    credited = [
        line for line in _proration_lines(obj) if (_whole(line.get("amount"), "amount") or 0) < 0
    ]
    if not charged:
        return "ignored:no_charged_line"
    new_key = _line_plan_key(session, charged[-1])
    old_key = _line_plan_key(session, credited[-1]) if credited else None
    if new_key is None:
        return "ignored:unknown_plan"
    new_plan = plan_get(session=session, key=new_key)
    old_plan = plan_get(session=session, key=old_key) if old_key else None
    period = _object(charged[-1].get("period"), "lines.data[].period")
    line_start, line_end = _ts(period.get("start")), _ts(period.get("end"))
    if line_start is None or line_end is None:
        raise EventNotApplicable("missing_field", "the proration line has no period")
    subscription = _subscription_for_update(session, org)
    cycle_start = as_utc(subscription.current_period_start)
    cycle_end = as_utc(subscription.current_period_end)
    cycle_seconds = (
        (cycle_end - cycle_start).total_seconds()
        if cycle_start and cycle_end and cycle_end == line_end
        else DEFAULT_PERIOD_SECONDS
    )
    difference = new_plan.monthly_credits - (old_plan.monthly_credits if old_plan else 0)
    top_up = prorated_credits(difference, (line_end - line_start).total_seconds(), cycle_seconds)
    if top_up > 0:
        credits.credits_grant(
            session=session,
            org_id=org.id,
            amount_millicredits=top_up * MC,
            idempotency_key=plan_change_grant_key(org.id, line_end, new_plan.key),
            kind=LedgerEntryKind.grant,
            reference=invoice_id,
            memo=f"{new_plan.name} credits for the rest of the cycle"
            + (f" (upgrade from {old_plan.name})" if old_plan else ""),
        )
    _invoice_upsert(
        session,
        org_id=org.id,
        provider_invoice_id=invoice_id,
        kind="subscription",
        status="paid",
        amount_cents=_whole(obj.get("amount_paid"), "amount_paid")
        or _whole(obj.get("total"), "total"),
        currency=_currency(obj.get("currency")),
        credits=max(top_up, 0),
        hosted_url=_url(obj.get("hosted_invoice_url")),
        period_start=line_start,
        period_end=line_end,
        created_at=event_at,
    )
    if not _is_stale(subscription, event_at) and _adoptable(subscription, subscription_id):
        _set_plan(session, org, subscription, new_plan.key)
        subscription.stripe_subscription_id = subscription_id
        if subscription.scheduled_plan_key and subscription.scheduled_plan_key != new_plan.key:
            subscription.scheduled_plan_key = None  # an upgrade undoes a scheduled downgrade
        subscription.cancel_at_period_end = False
        subscription.last_event_at = event_at
        subscription.updated_at = utcnow()
        session.add(subscription)
    return "plan_upgraded_prorated"


def _on_invoice_paid(session: Session, obj: dict, event_at: datetime) -> str:
    invoice_id = _required_ref(obj, "id")
    org = _org_for(session, obj)
    if org is None:
        return "ignored:unknown_customer"
    subscription_id = _invoice_subscription_id(obj)
    _refuse_foreign_subscription(session, org, subscription_id)
    if subscription_id and _proration_lines(obj):
        return _on_proration_paid(session, org, obj, invoice_id, subscription_id, event_at)
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
        amount_cents=_whole(obj.get("amount_paid"), "amount_paid")
        or _whole(obj.get("total"), "total"),
        currency=_currency(obj.get("currency")),
        credits=granted,
        hosted_url=_url(obj.get("hosted_invoice_url")),
        period_start=period_start,
        period_end=period_end,
        created_at=event_at,
    )
    if not subscription_id:
        return "invoice_recorded"
    if plan is None:
        return "ignored:unknown_plan"
    if obj.get("billing_reason") == "subscription_cycle":
        _expire_finished_cycle(session, org, period_start)
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
        if subscription.scheduled_plan_key == plan.key or obj.get("billing_reason") in (
            "subscription_create",
            "subscription_cycle",
        ):
            subscription.scheduled_plan_key = None  # the scheduled plan took effect
        subscription.last_event_at = event_at
        subscription.updated_at = utcnow()
        session.add(subscription)
    return "monthly_credits_granted"


def _on_invoice_failed(session: Session, obj: dict, event_at: datetime) -> str:
    invoice_id = _required_ref(obj, "id")
    org = _org_for(session, obj)
    if org is None:
        return "ignored:unknown_customer"
    subscription_id = _invoice_subscription_id(obj)
    _refuse_foreign_subscription(session, org, subscription_id)
    period_start, period_end = _invoice_period(obj)
    _invoice_upsert(
        session,
        org_id=org.id,
        provider_invoice_id=invoice_id,
        kind="subscription" if subscription_id else "top_up",
        status="failed",
        amount_cents=_whole(obj.get("amount_due"), "amount_due")
        or _whole(obj.get("total"), "total"),
        currency=_currency(obj.get("currency")),
        hosted_url=_url(obj.get("hosted_invoice_url")),
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
    subscription_id = _required_ref(obj, "id")
    org = _org_for(session, obj)
    if org is None:
        return "ignored:unknown_customer"
    _refuse_foreign_subscription(session, org, subscription_id)
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
    details = _object(obj.get("cancellation_details"), "cancellation_details")
    if deleted and (
        subscription.cancel_at_period_end
        or obj.get("cancel_at_period_end") is True
        or details.get("reason") == "cancellation_requested"
    ):
        return _back_to_free(session, org, subscription, event_at)
    scheduled = _metadata(obj).get("scheduled_plan_key")
    if isinstance(scheduled, str) and not deleted:
        known = {plan.key for plan in plans_list(session=session)}
        subscription.scheduled_plan_key = scheduled if scheduled in known else None
    plan_key = _plan_key_from(session, obj)
    if plan_key is not None:
        _set_plan(session, org, subscription, plan_key)
        if subscription.scheduled_plan_key == plan_key:
            subscription.scheduled_plan_key = None  # it took effect (metadata may lag behind)
    subscription.stripe_subscription_id = subscription_id
    subscription.status = status.value
    first_item = next(iter(_items(obj)), {})
    subscription.current_period_start = (
        _ts(obj.get("current_period_start") or first_item.get("current_period_start"))
        or subscription.current_period_start
    )
    subscription.current_period_end = (
        _ts(obj.get("current_period_end") or first_item.get("current_period_end"))
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


def _expire_finished_cycle(session: Session, org: Organization, cycle_end: datetime | None) -> None:
    """A renewal (or the end after a cancel) closes the cycle that ends at `cycle_end`: its
    unused monthly credits expire, once (the key names the cycle). The cycle is found from its
    invoices (the first one ending then started it), so it does not matter whether the
    subscription's own update arrived first."""
    if cycle_end is None:
        return
    invoices = session.exec(
        select(Invoice)
        .where(Invoice.org_id == org.id, Invoice.kind == "subscription")
        .order_by(col(Invoice.id).desc())
        .limit(50)
    ).all()
    starts = [
        as_utc(invoice.period_start)
        for invoice in invoices
        if invoice.period_start is not None
        and invoice.period_end is not None
        and as_utc(invoice.period_end) == cycle_end
        and invoice.status == "paid"
    ]
    if not starts:
        return
    monthly_credits_expire(
        session=session, org_id=org.id, cycle_start=min(starts), cycle_end=cycle_end
    )


def _back_to_free(
    session: Session, org: Organization, subscription: Subscription, event_at: datetime
) -> str:
    """A subscription the owner canceled ended with its period: the org is on Free (runs
    stay allowed); a later checkout starts a new subscription. The last cycle's unused
    monthly credits expire like at any cycle end."""
    _expire_finished_cycle(session, org, as_utc(subscription.current_period_end))
    _set_plan(session, org, subscription, FREE_PLAN_KEY)
    subscription.status = SubscriptionStatus.active.value
    subscription.stripe_subscription_id = None
    subscription.cancel_at_period_end = False
    subscription.scheduled_plan_key = None
    subscription.current_period_start = None
    subscription.current_period_end = None
    subscription.last_event_at = event_at
    subscription.updated_at = utcnow()
    session.add(subscription)
    audit_record(
        session=session,
        action="billing.subscription_ended",
        actor_user_id=None,
        org_id=org.id,
        target_type="subscription",
        target_id=subscription.id,
        details={"plan": FREE_PLAN_KEY, "reason": "canceled_by_owner"},
    )
    return "back_to_free"


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
