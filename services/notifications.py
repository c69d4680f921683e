"""Notification preferences and the low-balance alert.

Invariants:
- Each person chooses per kind (`KINDS`); no row means on. Security mail (sign-in, password,
  two-factor) and owner billing mail (receipts, failed payments) are not in `KINDS`: they
  cannot be turned off.
- The low-balance alert fires once per crossing: when an organization's balance is below its
  owner-set threshold and the alert is armed, one conditional update
  (`armed = true -> false`) wins, and only the winner mails the owners. It re-arms when the
  balance is back at or above the threshold (a top-up). Two workers checking at once send one
  mail; the `low_balance_alerts` job checks every organization with a threshold each minute.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import routes
from core.clock import utcnow
from core.settings import get_settings
from models import (
    CreditAccount,
    LowBalanceAlert,
    Membership,
    NotificationPreference,
    Organization,
    User,
)
from models.enums import OrgRole
from services.credits import format_credits
from services.errors import ValidationFailed
from services.mail import mail_send

KINDS: tuple[tuple[str, str, str], ...] = (
    ("low_balance", "Low balance", "Owners: a mail when credits drop below the alert threshold."),
    ("run_failed", "Run failed", "A mail when one of your runs fails."),
    ("invite_accepted", "Invite accepted", "A mail when someone accepts your invitation."),
    ("connection_expired", "Connection expired", "A mail when a platform connection expires."),
    ("incidents", "Incidents", "A mail when an incident affects your organization."),
)
KIND_KEYS = tuple(key for key, _, _ in KINDS)
ALWAYS_ON = (
    "Security mail (sign-in links, password resets, two-factor changes)",
    "Owner billing mail (receipts, failed payments)",
)


def preferences_get(*, session: Session, user_id: int) -> dict[str, bool]:
    chosen = {
        row.kind: row.enabled
        for row in session.exec(
            select(NotificationPreference).where(NotificationPreference.user_id == user_id)
        )
    }
    return {key: chosen.get(key, True) for key in KIND_KEYS}


def preference_set(*, session: Session, user_id: int, kind: str, enabled: bool) -> None:
    """Turn one kind on or off for a person. Flushes; the caller commits."""
    if kind not in KIND_KEYS:
        raise ValidationFailed(
            "That notification cannot be changed here. Security and owner billing mail are "
            "always sent.",
            field="kind",
        )
    enabled = bool(enabled)
    now = utcnow()
    changed = session.execute(
        update(NotificationPreference)
        .where(
            col(NotificationPreference.user_id) == user_id,
            col(NotificationPreference.kind) == kind,
        )
        .values(enabled=enabled, updated_at=now)
    ).rowcount
    if changed:
        return
    try:
        with session.begin_nested():
            session.add(
                NotificationPreference(user_id=user_id, kind=kind, enabled=enabled, updated_at=now)
            )
    except IntegrityError:
        session.execute(
            update(NotificationPreference)
            .where(
                col(NotificationPreference.user_id) == user_id,
                col(NotificationPreference.kind) == kind,
            )
            .values(enabled=enabled, updated_at=now)
        )


def notification_wanted(*, session: Session, user_id: int, kind: str) -> bool:
    return preferences_get(session=session, user_id=user_id).get(kind, True)


def _alert_row(session: Session, org_id: int) -> None:
    exists = session.exec(
        select(LowBalanceAlert.id).where(LowBalanceAlert.org_id == org_id)
    ).first()
    if exists is not None:
        return
    try:
        with session.begin_nested():
            session.add(LowBalanceAlert(org_id=org_id, armed=True))
    except IntegrityError:  # another worker created it
        pass


def _owners(session: Session, org_id: int) -> list[User]:
    return list(
        session.exec(
            select(User)
            .join(Membership, col(Membership.user_id) == col(User.id))
            .where(Membership.org_id == org_id, Membership.role == OrgRole.owner.value)
        )
    )


def low_balance_check(*, session: Session, org_id: int) -> bool:
    """Mail the owners if the balance just crossed below the threshold; re-arm above it.
    Returns True when this call sent the alert. Flushes; the caller commits."""
    org = session.get(Organization, org_id)
    if org is None or org.deleted_at is not None or org.low_balance_alert_credits is None:
        return False
    balance = int(
        session.execute(
            select(CreditAccount.balance_millicredits).where(CreditAccount.org_id == org_id)
        ).scalar()
        or 0
    )
    threshold = int(org.low_balance_alert_credits) * 1000
    _alert_row(session, org_id)
    now = utcnow()
    if balance >= threshold:
        session.execute(
            update(LowBalanceAlert)
            .where(col(LowBalanceAlert.org_id) == org_id, col(LowBalanceAlert.armed).is_(False))
            .values(armed=True, last_balance_millicredits=balance, updated_at=now)
        )
        return False
    won = session.execute(
        update(LowBalanceAlert)
        .where(col(LowBalanceAlert.org_id) == org_id, col(LowBalanceAlert.armed).is_(True))
        .values(armed=False, last_sent_at=now, last_balance_millicredits=balance, updated_at=now)
    ).rowcount
    if not won:
        return False
    link = routes.absolute(get_settings().app_base_url, routes.org_billing(org.slug))
    for owner in _owners(session, org_id):
        if not notification_wanted(session=session, user_id=owner.id, kind="low_balance"):
            continue
        mail_send(
            session=session,
            to=owner.email,
            subject=f"{org.name}: credits below {format_credits(threshold)}",
            body_text=(
                f"Hello {owner.name},\n\n{org.name} has {format_credits(balance)} credits left, "
                f"below the alert you set at {format_credits(threshold)} credits. Runs that need "
                f"more than the balance will be refused.\n\nTop up in Billing: {link}\n\n"
                "You get this mail once each time the balance drops below the threshold. "
                "Change the threshold in Billing > Spend controls, or turn this mail off under "
                "Help > Notifications."
            ),
        )
    session.flush()
    return True


def low_balance_sweep() -> int:
    """The job: check every organization with a threshold; returns alerts sent."""
    from core.db import session_scope

    with session_scope() as session:
        org_ids = list(
            session.exec(
                select(Organization.id).where(
                    col(Organization.low_balance_alert_credits).is_not(None),
                    col(Organization.deleted_at).is_(None),
                )
            )
        )
    sent = 0
    for org_id in org_ids:
        with session_scope() as session:
            sent += int(low_balance_check(session=session, org_id=org_id))
    return sent
