"""Plan changes on the organization's one subscription, and renewals in local payment mode.

Rules
-----
* One subscription per organization. Checkout starts it (from Free, or after it expired);
  every later change modifies it, never a second subscription.
* Upgrade (a higher price): the new plan starts now; only the prorated difference for the rest
  of the paid period is charged (Stripe: subscription update with ``always_invoice``); the
  period, the renewal date and the spend-cap window stay. The cycle's credits are topped up
  pro rata by the webhook of that invoice, with one key per org, cycle and plan
  (`plan_change_grant_key`), so no plan is granted twice in a cycle.
* Downgrade (a lower paid plan): nothing is charged now; the current plan stays until the end
  of the paid period, then the lower plan renews ("Starter from <date>"). Choosing the current
  plan again before then undoes it.
* Cancel: back to Free at the end of the paid period; choosing the current plan before then
  undoes it (resume).
* Every path is previewed first (`plan_change_preview`): what is charged now, what changes
  when, and what happens to credits.
* Local payment mode sends the events Stripe would send (`customer.subscription.updated`,
  `invoice.paid` with proration lines) through `webhook_receive`, the same fulfilment code;
  `subscriptions_renew_due` (a job) plays the end of each period: a renewal invoice on the
  next plan, or the subscription deleted after a cancel.

Transactions: `plan_change_preview` reads inside the caller's transaction; `plan_change` and
`subscriptions_renew_due` own their units of work (checks in `core.db.session_scope()`, then one
`webhook_receive` per event, each committing on its own).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from core import db
from core.clock import as_utc, utcnow
from models import CreditLedgerEntry, Organization, Plan, Subscription, User
from models.enums import EXECUTABLE_SUBSCRIPTION_STATUSES
from services.audit import audit_record
from services.billing.common import (
    DEFAULT_PERIOD_SECONDS,
    FREE_PLAN_KEY,
    _org,
    _require_owner,
    _subscription,
    format_money,
    plan_change_grant_key,
    prorated_cents,
    prorated_credits,
)
from services.billing.webhooks import webhook_receive
from services.catalog import plan_get
from services.error_codes import Code
from services.errors import NotFound, ValidationFailed, error_with_code
from services.providers.payments import (
    LocalPaymentProvider,
    PaymentProviderError,
    SubscriptionChange,
    payment_provider,
)

logger = logging.getLogger(__name__)

# How long a preview's figures hold: confirming later asks the owner to look again.
PREVIEW_VALID_SECONDS = 15 * 60


@dataclass(frozen=True)
class PlanChangePreview:
    """What the owner reads before confirming a plan change (plain text, no secrets)."""

    plan_key: str
    kind: str  # "new" (checkout) | "upgrade" | "downgrade" | "cancel" | "resume"
    title: str
    lines: list[str]
    confirm_label: str
    charge_cents: int = 0
    credits: int = 0
    quoted_at: datetime = field(default_factory=utcnow)


def _day(moment: datetime | None) -> str:
    return moment.strftime("%B %-d, %Y") if moment else ""


def live_subscription(session: Session, org: Organization) -> Subscription | None:
    """The org's paid subscription while it runs (checkout done, period known), else None."""
    subscription = _subscription(session, org.id)
    if (
        subscription is None
        or not subscription.stripe_subscription_id
        or subscription.status not in EXECUTABLE_SUBSCRIPTION_STATUSES
        or subscription.current_period_end is None
        or subscription.plan_key == FREE_PLAN_KEY
    ):
        return None
    return subscription


def _plan(session: Session, key: str) -> Plan:
    try:
        plan = plan_get(session=session, key=key or "")
    except Exception:
        raise ValidationFailed("Pick a plan from the list.", field="plan_key") from None
    if not plan.is_public:
        raise ValidationFailed("Pick a plan from the list.", field="plan_key")
    return plan


def _period(subscription: Subscription) -> tuple[datetime, datetime]:
    end = as_utc(subscription.current_period_end)
    start = as_utc(subscription.current_period_start) or end - timedelta(
        seconds=DEFAULT_PERIOD_SECONDS
    )
    return start, end


def _already_topped_up(session: Session, key: str) -> bool:
    return (
        session.exec(
            select(CreditLedgerEntry.id).where(col(CreditLedgerEntry.idempotency_key) == key)
        ).first()
        is not None
    )


def plan_change_preview(
    *, session: Session, actor: User, org_id: int, plan_key: str, now: datetime | None = None
) -> PlanChangePreview:
    """What choosing `plan_key` would do, said before the owner confirms.

    Raises:
        PermissionDenied: not the owner. ValidationFailed: not a plan, or nothing to change.
    """
    org = _require_owner(session, actor, org_id)
    now = now or utcnow()
    target = _plan(session, plan_key)
    current = plan_get(session=session, key=org.plan_key)
    subscription = live_subscription(session, org)
    if subscription is None:
        if target.price_cents_monthly <= 0:
            raise ValidationFailed(
                f"You are on {current.name} without a paid subscription, so there is nothing to "
                "cancel.",
                field="plan_key",
            )
        renews = now + timedelta(seconds=DEFAULT_PERIOD_SECONDS)
        return PlanChangePreview(
            plan_key=target.key,
            kind="new",
            title=f"Subscribe to {target.name}",
            lines=[
                f"Charged now: {format_money(target.price_cents_monthly)} for the first month.",
                f"{target.name} starts as soon as the payment is confirmed and renews monthly "
                f"(next around {_day(renews)}) until you change or cancel it here.",
                f"Credits: {target.monthly_credits:,} added with each paid invoice, used first "
                "and expiring at the end of their cycle; purchased credits never expire.",
            ],
            confirm_label="Continue to checkout",
            charge_cents=target.price_cents_monthly,
            credits=target.monthly_credits,
            quoted_at=now,
        )
    start, end = _period(subscription)
    scheduled_key = subscription.scheduled_plan_key or (
        FREE_PLAN_KEY if subscription.cancel_at_period_end else None
    )
    if target.key == current.key:
        if scheduled_key is None:
            raise ValidationFailed(f"You are already on {current.name}.", field="plan_key")
        scheduled = plan_get(session=session, key=scheduled_key)
        return PlanChangePreview(
            plan_key=target.key,
            kind="resume",
            title=f"Keep {current.name}",
            lines=[
                "Charged now: nothing.",
                f"The change to {scheduled.name} on {_day(end)} is undone; {current.name} renews "
                f"on {_day(end)} at {format_money(current.price_cents_monthly)}/month.",
                f"Credits: {current.monthly_credits:,} with each paid invoice, as now.",
            ],
            confirm_label=f"Keep {current.name}",
            quoted_at=now,
        )
    if target.key == scheduled_key:
        raise ValidationFailed(
            f"{target.name} is already scheduled from {_day(end)}.", field="plan_key"
        )
    if target.price_cents_monthly > current.price_cents_monthly:
        period = (end - start).total_seconds()
        remaining = (end - now).total_seconds()
        charge = prorated_cents(
            target.price_cents_monthly - current.price_cents_monthly, remaining, period
        )
        top_up = prorated_credits(
            target.monthly_credits - current.monthly_credits, remaining, period
        )
        if _already_topped_up(session, plan_change_grant_key(org.id, end, target.key)):
            top_up = 0
        return PlanChangePreview(
            plan_key=target.key,
            kind="upgrade",
            title=f"Upgrade to {target.name}",
            lines=[
                f"Charged now: {format_money(charge)}, the difference between {current.name} and "
                f"{target.name} for the rest of this period (to {_day(end)}).",
                f"{target.name} starts now. The renewal date stays {_day(end)}, then "
                f"{format_money(target.price_cents_monthly)}/month.",
                f"Credits: +{top_up:,} now ({target.name}'s {target.monthly_credits:,} a month "
                f"minus {current.name}'s {current.monthly_credits:,}, for the days left); "
                f"{target.monthly_credits:,} with each renewal. Unused monthly credits expire on "
                f"{_day(end)}; purchased credits never do.",
            ]
            + (
                [
                    f"The change to {plan_get(session=session, key=scheduled_key).name} "
                    "scheduled for the end of the period is undone."
                ]
                if scheduled_key
                else []
            ),
            confirm_label=f"Pay {format_money(charge)} and upgrade",
            charge_cents=charge,
            credits=top_up,
            quoted_at=now,
        )
    if target.price_cents_monthly <= 0:
        return PlanChangePreview(
            plan_key=target.key,
            kind="cancel",
            title="Cancel the subscription",
            lines=[
                "Charged now: nothing, and nothing more after this period.",
                f"You keep {current.name} and its limits until {_day(end)}; Free from "
                f"{_day(end)}. Choose {current.name} again before then to undo this.",
                f"Credits: unused {current.name} monthly credits expire on {_day(end)}, as at "
                f"every cycle end; purchased credits stay. Free adds {target.monthly_credits:,} "
                "a month from then.",
            ],
            confirm_label=f"Cancel: Free from {_day(end)}",
            quoted_at=now,
        )
    return PlanChangePreview(
        plan_key=target.key,
        kind="downgrade",
        title=f"Switch to {target.name}",
        lines=[
            "Charged now: nothing.",
            f"You keep {current.name} and its limits until {_day(end)}; {target.name} from "
            f"{_day(end)} at {format_money(target.price_cents_monthly)}/month. Choose "
            f"{current.name} again before then to undo this.",
            f"Credits: unused {current.name} monthly credits expire on {_day(end)}, as at every "
            f"cycle end; purchased credits stay. Then {target.monthly_credits:,} with each "
            "renewal.",
        ],
        confirm_label=f"Switch to {target.name} from {_day(end)}",
        quoted_at=now,
    )


def plan_change(
    *,
    actor_user_id: int,
    org_id: int,
    plan_key: str,
    quoted_at: datetime | None = None,
    provider=None,
) -> str:
    """Apply an upgrade, downgrade, cancel or resume to the org's one subscription (as previewed
    at `quoted_at`, so the charge is the one the owner read). Returns what happened, to show.

    Raises:
        PermissionDenied: not the owner. ValidationFailed: nothing to change, no live
            subscription (start one with checkout), or the preview is too old.
        DomainError: "payment_provider_error" when Stripe refuses.
    """
    provider = provider or payment_provider()
    now = utcnow()
    if quoted_at is not None:
        if not timedelta(0) <= now - quoted_at <= timedelta(seconds=PREVIEW_VALID_SECONDS):
            raise ValidationFailed(
                "The figures you reviewed are more than 15 minutes old. Choose the plan again to "
                "see them updated.",
                field="plan_key",
            )
        now = quoted_at
    with db.session_scope() as session:
        actor = session.get(User, actor_user_id)
        if actor is None:
            raise NotFound("Your session has ended. Sign in again.")
        preview = plan_change_preview(
            session=session, actor=actor, org_id=org_id, plan_key=plan_key, now=now
        )
        if preview.kind == "new":
            raise ValidationFailed(
                "There is no paid subscription to change yet. Start one with checkout.",
                field="plan_key",
            )
        org = _org(session, org_id)
        subscription = live_subscription(session, org)
        assert subscription is not None  # the preview found it
        current = plan_get(session=session, key=org.plan_key)
        target = plan_get(session=session, key=preview.plan_key)
        start, end = _period(subscription)
        change = SubscriptionChange(
            org_id=org.id,
            customer_id=org.stripe_customer_id or "",
            subscription_id=subscription.stripe_subscription_id or "",
            kind=preview.kind,  # type: ignore[arg-type]
            from_plan_key=current.key,
            from_plan_name=current.name,
            from_price_cents=current.price_cents_monthly,
            to_plan_key=target.key,
            to_plan_name=target.name,
            to_price_cents=target.price_cents_monthly,
            period_start=int(start.timestamp()),
            period_end=int(end.timestamp()),
            charge_cents=preview.charge_cents,
            to_stripe_price_id=target.stripe_price_id,
        )
        try:
            provider.subscription_change(change)
        except PaymentProviderError as exc:
            raise error_with_code(Code.payment_provider_error, str(exc), http_status=502) from None
        audit_record(
            session=session,
            action="billing.plan_change_requested",
            actor_user_id=actor.id,
            org_id=org.id,
            target_type="subscription",
            target_id=subscription.id,
            details={
                "kind": preview.kind,
                "from": current.key,
                "to": target.key,
                "charge_cents": preview.charge_cents,
                "mode": provider.mode,
            },
        )
    if isinstance(provider, LocalPaymentProvider):
        _deliver(provider, provider.subscription_events(change, now=int(now.timestamp())))
        pending = ""
    else:
        pending = " Stripe confirms it in a few seconds; this page shows it then."
    day = _day(end)
    messages = {
        "upgrade": f"Upgraded to {target.name}: {format_money(preview.charge_cents)} charged now"
        + (f", +{preview.credits:,} credits added" if preview.credits else "")
        + f". Renews on {day}.",
        "downgrade": f"{target.name} from {day}. You keep {current.name} until then; choose "
        f"{current.name} to undo.",
        "cancel": f"Subscription canceled: Free from {day}. You keep {current.name} until then; "
        f"choose {current.name} to undo.",
        "resume": f"{current.name} continues and renews on {day}; the scheduled change is undone.",
    }
    return messages[preview.kind] + pending


def _deliver(provider: LocalPaymentProvider, events: list[dict]) -> list[str]:
    from services.billing.checkout import _json_bytes

    effects = []
    for event in events:
        payload = _json_bytes(event)
        outcome = webhook_receive(
            payload=payload, signature_header=provider.sign(payload), provider=provider
        )
        effects.append(outcome.effect)
    return effects


@dataclass
class RenewalResult:
    items: int = 0
    errors: int = 0
    error_details: list[str] = field(default_factory=list)


def subscriptions_renew_due(*, now: datetime | None = None, provider=None) -> RenewalResult:
    """Local payment mode: end every period that is over (Stripe renews its own).

    A period ends with the renewal invoice paid on the next plan (the scheduled downgrade, if
    any), whose webhook grants that cycle's credits once; or, after a cancel, with the
    subscription deleted, which takes the org back to Free. Each event is delivered through
    `webhook_receive` with ids derived from the subscription and the period, so two runs (or
    two schedulers) deliver duplicates that change nothing.
    """
    provider = provider or payment_provider()
    result = RenewalResult()
    if not isinstance(provider, LocalPaymentProvider):
        return result
    now = now or utcnow()
    with db.session_scope() as session:
        due = session.exec(
            select(Subscription.org_id)
            .where(
                col(Subscription.stripe_subscription_id).like("sub_local_%"),
                col(Subscription.current_period_end) <= now,
                col(Subscription.status).in_([s.value for s in EXECUTABLE_SUBSCRIPTION_STATUSES]),
            )
            .order_by(col(Subscription.org_id))
        ).all()
    for org_id in due:
        try:
            with db.session_scope() as session:
                org = session.get(Organization, org_id)
                subscription = _subscription(session, org_id)
                if org is None or org.deleted_at is not None or subscription is None:
                    continue
                _start, end = _period(subscription)
                if end > now:
                    continue  # renewed meanwhile by another run
                next_key = subscription.scheduled_plan_key or subscription.plan_key
                canceled = subscription.cancel_at_period_end or next_key == FREE_PLAN_KEY
                plan = plan_get(
                    session=session, key=subscription.plan_key if canceled else next_key
                )
                events = provider.renewal_events(
                    org_id=org_id,
                    customer_id=org.stripe_customer_id or "",
                    subscription_id=subscription.stripe_subscription_id or "",
                    plan_key=plan.key,
                    plan_name=plan.name,
                    price_cents=plan.price_cents_monthly,
                    period_start=int(end.timestamp()),
                    canceled=canceled,
                )
            _deliver(provider, events)
            result.items += 1
        except Exception as exc:  # the next run retries this one; the others still renew
            result.errors += 1
            result.error_details.append(f"org {org_id}: {exc.__class__.__name__}: {exc}")
            logger.exception("renewal for org %s failed", org_id)
    return result
