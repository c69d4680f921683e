"""Spend controls (monthly cap, low-balance alert) and project credit pools. Owner only,
audited.

Transactions: every function flushes inside the caller's transaction and never commits.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models import CreditLedgerEntry, Organization, Project, User
from services import credits
from services.audit import audit_record
from services.billing.common import MAX_SPEND_CAP_CREDITS, MC, _require_owner
from services.errors import ValidationFailed

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
