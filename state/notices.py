"""Read model of a plan guardrail that fired (or is about to): the limit, its value, the plan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from services.catalog import plan_get
from services.errors import PlanLimitReached

# What each limit counts, for a person ("Seat limit reached").
LIMIT_LABELS: dict[str, str] = {
    "seats": "Seat",
    "projects": "Project",
    "pending_invites": "Pending invite",
    "orgs_owned": "Organization",
}
LIMIT_UNITS: dict[str, str] = {
    "seats": "seats (members plus pending invites)",
    "projects": "active projects",
    "pending_invites": "pending invites",
    "orgs_owned": "organizations owned",
}


@dataclass
class LimitNotice:
    """Read model for the notice; empty `limit` means nothing to show."""

    limit: str = ""
    label: str = ""
    unit: str = ""
    used: int = 0
    allowed: int = 0
    plan_name: str = ""
    message: str = ""


def notice_for(
    *, limit: str, used: int, allowed: int, plan_name: str, message: str = ""
) -> LimitNotice:
    return LimitNotice(
        limit=limit,
        label=LIMIT_LABELS.get(limit, limit.replace("_", " ").capitalize()),
        unit=LIMIT_UNITS.get(limit, limit.replace("_", " ")),
        used=used,
        allowed=allowed,
        plan_name=plan_name,
        message=message,
    )


def notice_from_error(*, session: Session, error: PlanLimitReached) -> LimitNotice:
    """The notice for a service's PlanLimitReached (code plan_limit_reached)."""
    try:
        plan_name = plan_get(session=session, key=error.plan).name
    except Exception:  # an unknown plan key must not hide the notice itself
        plan_name = str(error.plan).capitalize()
    return notice_for(
        limit=error.limit,
        used=error.used,
        allowed=error.allowed,
        plan_name=plan_name,
        message=error.message,
    )
