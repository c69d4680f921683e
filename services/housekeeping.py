"""Housekeeping jobs: expire invites, purge sessions, Free-plan monthly credits.

Each function opens and commits its own transactions (they are job entry points) and is safe
when two processes run it at once: bulk ``UPDATE``/``DELETE`` statements re-check their
``WHERE`` clause on each row, and credit grants carry a unique idempotency key per org and month.
(Usage roll-ups for Analytics live in ``services/analytics/rollup.py``.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import db
from core.clock import utcnow
from models import (
    CreditAccount,
    CreditLedgerEntry,
    Invite,
    Organization,
    Plan,
    UserSession,
)
from models.enums import InviteStatus
from services.credits import MILLICREDITS_PER_CREDIT, credit_account_get_or_create, credits_grant

log = logging.getLogger(__name__)

REVOKED_SESSION_RETENTION = timedelta(days=30)


def _session(engine: Engine | None) -> Session:
    """A session of its own, on `engine` when one is given (benchmarks), else the process
    engine (`core.db.new_session`). The job commits it."""
    return Session(engine, expire_on_commit=False) if engine is not None else db.new_session()


@dataclass
class HousekeepingResult:
    items: int = 0
    errors: int = 0
    error_details: list[str] = field(default_factory=list)


# --- invites --------------------------------------------------------------------------------------


def invites_expire_due(*, engine: Engine | None = None, now: datetime | None = None) -> int:
    """Mark pending invites whose link has expired as ``expired``; returns how many changed."""
    now = now or utcnow()
    with _session(engine) as session:
        result = session.exec(
            update(Invite)
            .where(Invite.status == InviteStatus.pending.value, col(Invite.expires_at) <= now)
            .values(status=InviteStatus.expired.value)
        )
        session.commit()
        return int(result.rowcount or 0)


# --- sessions -------------------------------------------------------------------------------------


def sessions_purge_expired(*, engine: Engine | None = None, now: datetime | None = None) -> int:
    """Delete sessions past their absolute expiry (and sign-in handoffs that were never used),
    and revoked sessions older than 30 days. Returns how many rows were deleted."""
    now = now or utcnow()
    with _session(engine) as session:
        result = session.exec(
            delete(UserSession).where(
                or_(
                    col(UserSession.expires_at) <= now,
                    col(UserSession.revoked_at) <= now - REVOKED_SESSION_RETENTION,
                )
            )
        )
        session.commit()
        return int(result.rowcount or 0)


# --- monthly credits for plans not billed by Stripe ------------------------------------------------


def monthly_grant_key(org_id: int, moment: datetime) -> str:
    return f"monthly-grant:{org_id}:{moment:%Y-%m}"


def monthly_credit_grants(
    *, engine: Engine | None = None, now: datetime | None = None
) -> HousekeepingResult:
    """Grant this calendar month's credits to every org on a plan without a price (Free).

    Paid plans get their credits on each paid invoice (billing); this covers the rest. One
    grant per org and month (key ``monthly-grant:{org_id}:{YYYY-MM}``), each in its own
    transaction, so a second process or a re-run grants nothing twice.
    """
    now = now or utcnow()
    month_suffix = f":{now:%Y-%m}"
    result = HousekeepingResult()
    with _session(engine) as session:
        candidates = session.exec(
            select(Organization.id, Plan.monthly_credits, Plan.name)
            .join(Plan, Plan.key == Organization.plan_key)
            .where(
                col(Organization.deleted_at).is_(None),
                Plan.price_cents_monthly == 0,
                Plan.monthly_credits > 0,
            )
            .order_by(col(Organization.id))
        ).all()
        granted = set(
            session.exec(
                select(CreditLedgerEntry.idempotency_key).where(
                    col(CreditLedgerEntry.idempotency_key).like(f"monthly-grant:%{month_suffix}")
                )
            ).all()
        )
    for org_id, monthly_credits, plan_name in candidates:
        key = monthly_grant_key(org_id, now)
        if key in granted:
            continue
        try:
            with _session(engine) as session:
                # Under the account lock, so a concurrent run's grant is seen and not counted.
                credit_account_get_or_create(session=session, org_id=org_id)
                session.exec(
                    select(CreditAccount.id).where(CreditAccount.org_id == org_id).with_for_update()
                ).one()
                already = session.exec(
                    select(CreditLedgerEntry.id).where(CreditLedgerEntry.idempotency_key == key)
                ).first()
                if already is not None:
                    session.rollback()
                    continue
                credits_grant(
                    session=session,
                    org_id=org_id,
                    amount_millicredits=int(monthly_credits) * MILLICREDITS_PER_CREDIT,
                    idempotency_key=key,
                    reference=f"monthly:{now:%Y-%m}",
                    memo=f"{plan_name} plan monthly credits for {now:%B %Y}",
                )
                session.commit()
            result.items += 1
        except Exception as exc:  # next run retries this org; the others still get theirs
            result.errors += 1
            result.error_details.append(f"org {org_id}: {exc.__class__.__name__}: {exc}")
            log.exception("monthly grant for org %s failed", org_id)
    return result
