"""What the Billing page shows: the plan, balance, pools, usage this cycle, invoices, offers,
and the credit rates of models and tools. Plain values, no rows, no secrets.

Transactions: read only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import routes
from core.clock import as_utc, utcnow
from models import AIModel, CreditLedgerEntry, Invoice, Project, Subscription, Tool
from models.enums import (
    EXECUTABLE_SUBSCRIPTION_STATUSES,
    RUNNABLE_SUBSCRIPTION_STATUSES,
    LedgerEntryKind,
    Modality,
    SubscriptionStatus,
)
from services import credits, pricing
from services.billing.common import (
    FREE_PLAN_KEY,
    MC,
    MONTHLY_CREDITS_RULE,
    TopUpTerms,
    _org,
    _subscription,
    billing_profile_required,
    format_money,
    payments_mode,
    top_up_terms,
)
from services.billing.subscriptions import live_subscription
from services.catalog import plans_list
from services.errors import NotFound
from services.plan_limits import org_plan, plan_usage

_STATUS_LABELS = {
    "active": "Active",
    "trialing": "Trial",
    "past_due": "Payment overdue",
    "unpaid": "Unpaid",
    "canceled": "Canceled",
    "expired": "Expired",
    "incomplete": "Awaiting payment",
}


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
    action: str = ""  # what choosing it does: "Upgrade to Growth", "Keep Growth", "Cancel..."
    note: str = ""  # e.g. "From March 31, 2026" for a scheduled downgrade


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
    period: str = ""  # "Mar 1 – Mar 31, 2026"


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
    scheduled_change: str = ""  # "Starter from March 31, 2026" / "Free from ..." (cancel)
    credits_rule: str = ""
    locked_reason: str = ""  # why tools are paused and how to fix it; empty when they run


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


@dataclass(frozen=True)
class ReceiptView:
    """One invoice as a receipt page shows it (local payment mode has no hosted page)."""

    org_name: str
    invoice_id: str
    date: str
    kind: str
    status: str
    amount: str
    credits: str
    period: str
    local: bool


def invoice_receipt(*, session: Session, org_id: int, invoice_id: str) -> ReceiptView:
    """The receipt of one of the org's invoices.

    Raises:
        NotFound: no such invoice in this organization.
    """
    org = _org(session, org_id)
    invoice = session.exec(
        select(Invoice).where(
            Invoice.org_id == org_id, Invoice.provider_invoice_id == (invoice_id or "")[:255]
        )
    ).first()
    if invoice is None:
        raise NotFound("This receipt does not exist in this organization. Open it from Billing.")
    return ReceiptView(
        org_name=org.name,
        invoice_id=invoice.provider_invoice_id,
        date=as_utc(invoice.created_at).strftime("%Y-%m-%d %H:%M UTC"),
        kind="Subscription" if invoice.kind == "subscription" else "Credit top-up",
        status=invoice.status.capitalize(),
        amount=format_money(invoice.amount_cents, invoice.currency),
        credits=f"{invoice.credits:,}" if invoice.credits else "",
        period=_period_text(as_utc(invoice.period_start), as_utc(invoice.period_end)),
        local=not invoice.hosted_url,
    )


def _period_text(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None or end <= start:
        return ""
    return f"{start:%b %-d, %Y} – {end:%b %-d, %Y}"


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
            url=invoice.hosted_url
            or routes.org_local_receipt(org.slug, invoice.provider_invoice_id),
            period=_period_text(as_utc(invoice.period_start), as_utc(invoice.period_end)),
        )
        for invoice in session.exec(
            select(Invoice)
            .where(Invoice.org_id == org_id)
            .order_by(col(Invoice.created_at).desc(), col(Invoice.id).desc())
            .limit(50)
        )
    ]
    live = live_subscription(session, org)
    scheduled_key = None
    if live is not None:
        scheduled_key = live.scheduled_plan_key or (
            FREE_PLAN_KEY if live.cancel_at_period_end else None
        )
    period_end = _long_day(as_utc(live.current_period_end)) if live is not None else ""
    offers = [
        PlanOffer(
            key=p.key,
            name=p.name,
            price="$0/mo"
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
        if live is None
        else PlanOffer(
            key=p.key,
            name=p.name,
            price="$0/mo"
            if p.price_cents_monthly == 0
            else f"{format_money(p.price_cents_monthly)}/mo",
            monthly_credits=f"{p.monthly_credits:,}",
            seats=_limit_text(p.max_seats),
            projects=_limit_text(p.max_projects),
            features=list(p.features or []),
            rank=p.rank,
            current=p.key == plan.key,
            purchasable=(p.key != plan.key or scheduled_key is not None) and p.key != scheduled_key,
            action=_offer_action(p, plan, scheduled_key),
            note=f"From {period_end}" if p.key == scheduled_key else "",
        )
        for p in plans_list(session=session)
        if p.is_public
    ]
    scheduled_plan = next((p for p in offers if p.key == scheduled_key), None)
    alert = org.low_balance_alert_credits
    return BillingOverview(
        payments_mode=payments_mode(),
        plan_key=plan.key,
        plan_name=plan.name,
        # Not "Free" again next to the plan called Free.
        plan_price="No monthly charge"
        if plan.price_cents_monthly == 0
        else f"{format_money(plan.price_cents_monthly)}/month",
        status=status,
        status_label=_STATUS_LABELS.get(status, status.replace("_", " ").capitalize()),
        executable=status in RUNNABLE_SUBSCRIPTION_STATUSES,
        locked_reason=_locked_reason(status),
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
        scheduled_change=f"{scheduled_plan.name} from {period_end}" if scheduled_plan else "",
        credits_rule=CREDITS_RULE,
    )


CREDITS_RULE = MONTHLY_CREDITS_RULE


def _locked_reason(status: str) -> str:
    if status in RUNNABLE_SUBSCRIPTION_STATUSES:
        return ""
    if status == SubscriptionStatus.past_due.value:
        return (
            "The last payment failed, so tools are paused until it is paid. Everything stays "
            "readable. Update the payment method in Manage billing (the invoice is retried), "
            "or cancel the subscription below."
        )
    return (
        "The subscription has expired or is unpaid, so tools are paused. Everything stays "
        "readable. Renew by choosing a plan below."
    )


def _long_day(moment: datetime | None) -> str:
    return moment.strftime("%B %-d, %Y") if moment else ""


def _offer_action(offer, current, scheduled_key: str | None) -> str:
    if offer.key == current.key:
        return f"Keep {offer.name}"
    if offer.price_cents_monthly <= 0:
        return "Cancel subscription"
    if offer.price_cents_monthly > current.price_cents_monthly:
        return f"Upgrade to {offer.name}"
    return f"Switch to {offer.name}"


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
