"""Shared billing helpers: catalog terms, money formatting, the org and owner checks, the
billing-profile rule of the Free plan, and small parsers for provider payloads.

Transactions: nothing here commits; functions taking ``session`` read or flush inside the
caller's transaction.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlmodel import Session, select

from core.settings import get_settings
from models import Organization, Subscription, User
from services import credits, policy
from services.catalog import CATALOG_DIR
from services.error_codes import Code
from services.errors import NotFound, PermissionDenied, error_with_code

FREE_PLAN_KEY = "free"
PROVIDER_STRIPE = "stripe"  # local mode records its events under the same provider name
MAX_SPEND_CAP_CREDITS = 10_000_000
MC = credits.MILLICREDITS_PER_CREDIT


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


# --- plan changes: proration ----------------------------------------------------------------

# A period whose length is unknown counts as 30 days (the local payment mode's period).
DEFAULT_PERIOD_SECONDS = 30 * 24 * 60 * 60


def prorated_cents(
    price_difference_cents: int, remaining_seconds: float, period_seconds: float
) -> int:
    """The part of a monthly price difference for the time left in the period, to the cent."""
    period_seconds = period_seconds if period_seconds > 0 else DEFAULT_PERIOD_SECONDS
    remaining = min(max(remaining_seconds, 0), period_seconds)
    return round(price_difference_cents * remaining / period_seconds)


def prorated_credits(
    credits_difference: int, remaining_seconds: float, period_seconds: float
) -> int:
    """Whole credits of a monthly allowance difference for the time left (rounded down)."""
    period_seconds = period_seconds if period_seconds > 0 else DEFAULT_PERIOD_SECONDS
    remaining = min(max(remaining_seconds, 0), period_seconds)
    return int(credits_difference * remaining // period_seconds)


def plan_change_grant_key(org_id: int, period_end: datetime, plan_key: str) -> str:
    """One top-up per org, billing cycle (named by its end) and plan: never granted twice."""
    return f"plan-change:{org_id}:{period_end:%Y%m%dT%H%M%S}:{plan_key}"


# --- monthly credits expire at the end of their cycle -----------------------------------------

MONTHLY_CREDITS_RULE = (
    "Monthly credits of a subscription are used first and expire at the end of their billing "
    "cycle; purchased top-ups never expire. Free plan credits stay until used."
)


def monthly_credits_expire(
    *, session: Session, org_id: int, cycle_start: datetime, cycle_end: datetime
) -> int:
    """Expire what is left of a finished cycle's monthly credits (an ``expiry`` entry, once per
    org and cycle). Runs draw on monthly credits first, so what is left is the cycle's grants
    (paid invoice and upgrade top-ups) minus what runs spent in the cycle; purchased credits
    are never touched. Returns the millicredits expired. Flushes only."""
    from sqlalchemy import func
    from sqlmodel import col

    from models import CreditLedgerEntry
    from models.enums import LedgerEntryKind

    def total(kinds: list[str], *, grants_only: bool) -> int:
        query = select(func.coalesce(func.sum(CreditLedgerEntry.amount_millicredits), 0)).where(
            CreditLedgerEntry.org_id == org_id,
            col(CreditLedgerEntry.kind).in_(kinds),
            CreditLedgerEntry.created_at >= cycle_start,
        )
        if grants_only:  # Free's monthly grants are not subscription credits
            query = query.where(~col(CreditLedgerEntry.idempotency_key).like("monthly-grant:%"))
        return int(session.exec(query).one())

    granted = total([LedgerEntryKind.grant.value], grants_only=True)
    spent = -total(
        [LedgerEntryKind.hold.value, LedgerEntryKind.settle.value, LedgerEntryKind.release.value],
        grants_only=False,
    )
    unused = granted - max(spent, 0)
    if unused <= 0:
        return 0
    entry = credits.credits_expire(
        session=session,
        org_id=org_id,
        amount_millicredits=unused,
        idempotency_key=f"expiry:{org_id}:{cycle_end:%Y%m%dT%H%M%S}",
        memo=f"Unused monthly credits of the cycle ending {cycle_end:%Y-%m-%d} "
        "(purchased credits never expire)",
    )
    return -entry.amount_millicredits
