"""The operators' platform view: top organizations and revenue by day, from the roll-up."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from core.clock import as_utc
from models import Invoice, Organization
from services import policy
from services.analytics.common import day_bounds, days
from services.analytics.queries import Period, Scope, aggregate

TOP_ORGS = 20


@dataclass(frozen=True)
class OrgUsage:
    slug: str
    name: str
    millicredits: int
    runs: int
    failures: int


@dataclass(frozen=True)
class RevenueDay:
    day: date
    amount_cents: int
    invoices: int


@dataclass(frozen=True)
class PlatformOverview:
    period: Period
    top_by_credits: list[OrgUsage]
    top_by_runs: list[OrgUsage]
    top_by_failures: list[OrgUsage]
    revenue: list[RevenueDay]
    revenue_currency: str
    other_currencies: list[str]

    @property
    def total_revenue_cents(self) -> int:
        return sum(day.amount_cents for day in self.revenue)


def platform_overview(
    *, session: Session, actor: policy.Actor, period: Period, currency: str = "usd"
) -> PlatformOverview:
    """Top organizations by credits, runs and failures; paid-invoice revenue per UTC day.

    Raises:
        PermissionDenied: the actor is not a platform operator.
    """
    policy.require(actor, policy.Action.operator_access, policy.Target())
    usage = aggregate(
        session, org_id=None, scope=Scope(), first=period.first, last=period.last, dims=("org_id",)
    )
    orgs = (
        {
            org.id: org
            for org in session.exec(
                select(Organization).where(col(Organization.id).in_([key[0] for key in usage]))
            )
        }
        if usage
        else {}
    )
    rows = [
        OrgUsage(
            slug=orgs[org_id].slug,
            name=orgs[org_id].name,
            millicredits=m.millicredits,
            runs=m.runs,
            failures=m.failures,
        )
        for (org_id,), m in usage.items()
        if org_id in orgs
    ]
    start, _ = day_bounds(period.first)
    _, end = day_bounds(period.last)
    cents: dict[date, int] = defaultdict(int)
    counts: dict[date, int] = defaultdict(int)
    others: set[str] = set()
    for invoice in session.exec(
        select(Invoice).where(
            Invoice.status == "paid",
            col(Invoice.created_at) >= start,
            col(Invoice.created_at) < end,
        )
    ):
        if invoice.currency != currency:
            others.add(invoice.currency)
            continue
        day = as_utc(invoice.created_at).date()
        cents[day] += invoice.amount_cents
        counts[day] += 1
    return PlatformOverview(
        period=period,
        top_by_credits=sorted(rows, key=lambda r: (-r.millicredits, r.slug))[:TOP_ORGS],
        top_by_runs=sorted(rows, key=lambda r: (-r.runs, r.slug))[:TOP_ORGS],
        top_by_failures=sorted(
            [r for r in rows if r.failures], key=lambda r: (-r.failures, r.slug)
        )[:TOP_ORGS],
        revenue=[
            RevenueDay(day, cents.get(day, 0), counts.get(day, 0))
            for day in days(period.first, period.last)
        ],
        revenue_currency=currency,
        other_currencies=sorted(others),
    )
