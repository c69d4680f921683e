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


# --- event mail: run failed, invite accepted, connection expired, incidents ---------------------
#
# Each is sent by the one transaction that makes the change, so it goes out once per event:
# a run's failure is written under its row lock by the one completion (or sweep) that finds it
# still running; an invite is accepted under its row lock; a connection is marked expired by the
# refresh that holds its row (SKIP LOCKED); an incident is opened or updated by one request.
# Callers pass the session of that transaction; these helpers flush and never commit.

_FOOTER = "Turn this mail off under Help > Notifications: {link}"


def _wanted_users(session: Session, user_ids: list[int], kind: str) -> list[User]:
    """The people among `user_ids` (once each, in order) who want mail of `kind`."""
    seen: set[int] = set()
    users: list[User] = []
    for user_id in user_ids:
        if user_id is None or user_id in seen:
            continue
        seen.add(user_id)
        user = session.get(User, user_id)
        if user is None or not user.email:
            continue
        if notification_wanted(session=session, user_id=user_id, kind=kind):
            users.append(user)
    return users


def _is_member(session: Session, org_id: int, user_id: int | None) -> bool:
    if user_id is None:
        return False
    return (
        session.exec(
            select(Membership.id).where(Membership.org_id == org_id, Membership.user_id == user_id)
        ).first()
        is not None
    )


def _notifications_link(org: Organization) -> str:
    return routes.absolute(get_settings().app_base_url, routes.help_notifications(org.slug))


def run_failed_notify(*, session: Session, generation) -> bool:
    """Mail the person who ran a Studio run that just failed (or timed out), if they want it.

    Call it in the transaction that marks the run failed (only one does). API runs are left
    out: the API caller already got the error in the response. Returns True when mailed."""
    if generation.api_key_id or not _is_member(session, generation.org_id, generation.user_id):
        return False
    org = session.get(Organization, generation.org_id)
    if org is None or org.deleted_at is not None:
        return False
    users = _wanted_users(session, [generation.user_id], "run_failed")
    if not users:
        return False
    user = users[0]
    code = generation.failure_code or "error"
    reason = (generation.failure_reason or "The run did not finish.").strip()
    base = get_settings().app_base_url
    studio = routes.absolute(base, routes.org_area(org.slug, "studio"))
    report = routes.absolute(
        base,
        routes.support_new(
            org.slug,
            generation_id=generation.public_id,
            error_code=code,
            model=generation.model_key,
        ),
    )
    mail_send(
        session=session,
        to=user.email,
        subject=f"{org.name}: run {generation.public_id} failed ({code})",
        body_text=(
            f"Hello {user.name or user.email},\n\nYour run {generation.public_id} on "
            f"{generation.model_key} in {org.name} failed with {code}: {reason}\n\n"
            "Credits held for it were returned. Retry it from Studio History: "
            f"{studio}\n\nIf it keeps failing, report it (the form is filled in): {report}\n\n"
            + _FOOTER.format(link=_notifications_link(org))
        ),
    )
    return True


def invite_accepted_notify(*, session: Session, invite, member: User) -> bool:
    """Mail the person who sent an invitation that was just accepted, if they want it."""
    org = session.get(Organization, invite.org_id)
    if org is None or org.deleted_at is not None or invite.invited_by_user_id == member.id:
        return False
    if not _is_member(session, invite.org_id, invite.invited_by_user_id):
        return False
    users = _wanted_users(session, [invite.invited_by_user_id], "invite_accepted")
    if not users:
        return False
    inviter = users[0]
    team = routes.absolute(get_settings().app_base_url, routes.org_team(org.slug))
    who = f"{member.name} ({member.email})" if member.name else member.email
    mail_send(
        session=session,
        to=inviter.email,
        subject=f"{org.name}: {member.email} accepted your invitation",
        body_text=(
            f"Hello {inviter.name or inviter.email},\n\n{who} accepted your invitation and "
            f"joined {org.name} as {invite.role}.\n\nSee the team: {team}\n\n"
            + _FOOTER.format(link=_notifications_link(org))
        ),
    )
    return True


def _org_managers(session: Session, org_id: int) -> list[int]:
    return list(
        session.exec(
            select(Membership.user_id)
            .where(
                Membership.org_id == org_id,
                col(Membership.role).in_([OrgRole.owner.value, OrgRole.admin.value]),
            )
            .order_by(col(Membership.id))
        )
    )


def connection_expired_notify(*, session: Session, connection, provider_name: str) -> int:
    """Mail who connected a platform, and the owners and admins who can reconnect it, that it
    expired (each once, if they want it). Returns how many were mailed."""
    org = session.get(Organization, connection.org_id)
    if org is None or org.deleted_at is not None:
        return 0
    candidates = [connection.connected_by_user_id, *_org_managers(session, org.id)]
    members = [u for u in candidates if _is_member(session, org.id, u)]
    link = routes.absolute(get_settings().app_base_url, routes.org_settings(org.slug))
    account = connection.account_label or ""
    sent = 0
    for user in _wanted_users(session, members, "connection_expired"):
        mail_send(
            session=session,
            to=user.email,
            subject=f"{org.name}: the {provider_name} connection expired",
            body_text=(
                f"Hello {user.name or user.email},\n\nThe {provider_name} connection"
                + (f" ({account})" if account else "")
                + f" of {org.name} expired: {connection.last_error or 'the access ended.'}\n\n"
                f"Reconnect it in one click in Settings > Connections: {link}\n\n"
                + _FOOTER.format(link=_notifications_link(org))
            ),
        )
        sent += 1
    return sent


def incident_notify(*, session: Session, incident, status: str, body: str) -> int:
    """Mail the members of the organizations an incident reaches (every organization when it
    names none) who want incident mail, once per person. Returns how many were mailed."""
    query = (
        select(Membership.user_id, Membership.org_id)
        .join(Organization, col(Organization.id) == col(Membership.org_id))
        .where(col(Organization.deleted_at).is_(None))
        .order_by(col(Membership.user_id), col(Membership.org_id))
    )
    org_ids = [int(i) for i in (incident.org_ids or [])]
    if org_ids:
        query = query.where(col(Membership.org_id).in_(org_ids))
    first_org: dict[int, int] = {}
    for user_id, org_id in session.execute(query):
        first_org.setdefault(user_id, org_id)
    if not first_org:
        return 0
    status_page = routes.absolute(get_settings().app_base_url, "/status")
    sent = 0
    for user in _wanted_users(session, list(first_org), "incidents"):
        org = session.get(Organization, first_org[user.id])
        mail_send(
            session=session,
            to=user.email,
            subject=f"Incident {status}: {incident.title}",
            body_text=(
                f"Hello {user.name or user.email},\n\n{incident.title} ({incident.impact}): "
                f"{status}.\n\n{body}\n\nFollow it on the status page: {status_page}\n\n"
                + _FOOTER.format(link=_notifications_link(org))
            ),
        )
        sent += 1
    return sent
