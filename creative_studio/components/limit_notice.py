"""A plan guardrail that fired (or is about to): name the limit, its value, and the way out."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx
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


def limit_notice(notice, billing_href, *, role: str = "alert") -> rx.Component:
    """Render a LimitNotice (a state var or a plain value) with a link to Billing.

    Args:
        notice: a `LimitNotice` var; nothing is shown when its `limit` is "".
        billing_href: /org/<slug>/billing (a str or a Var).
        role: "alert" after an action was refused, "status" when shown ahead of time.
    """
    return rx.cond(
        notice.limit != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("gauge")),
            rx.vstack(
                rx.text(notice.label, " limit reached", weight="bold", size="2"),
                rx.text(
                    "Your ",
                    rx.text.strong(notice.plan_name),
                    " plan allows ",
                    rx.text.strong(notice.allowed),
                    " ",
                    notice.unit,
                    "; you are using ",
                    rx.text.strong(notice.used),
                    ".",
                    size="2",
                ),
                rx.cond(notice.message != "", rx.text(notice.message, size="2")),
                rx.link(
                    rx.hstack(
                        rx.icon("arrow-up-right", size=14),
                        rx.text("Upgrade in Billing"),
                        align="center",
                        spacing="1",
                    ),
                    href=billing_href,
                    size="2",
                    weight="medium",
                ),
                spacing="1",
                align="start",
            ),
            color_scheme="amber",
            role=role,
            width="100%",
        ),
    )
