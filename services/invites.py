"""Invitations: to an exact email, with a role (and projects for a scoped editor).

The link token is random (`core.crypto.new_token`); only its keyed hash is stored. A link
expires after 7 days. Resending marks the old row `superseded` and creates a new row with a
new token, so the old link stops working and says a newer invite was sent.

Transaction boundary: like `services.orgs`, these functions flush but never commit; the
caller commits. Create and resend also send the invitation mail (`services.mail.mail_send`,
recorded in the outbox in the same transaction), so every caller (Team page, API) sends the
same mail; they still return the accept URL.
`invite_accept` locks the invite row (SELECT ... FOR UPDATE on PostgreSQL) so two accepts
of the same link at once create exactly one membership; the unique (org_id, user_id)
constraint is the last line of defence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from core import routes
from core.clock import as_utc, utcnow
from core.crypto import hash_token, new_token
from models import Invite, Membership, Organization, Project, User
from models.enums import InviteStatus, OrgRole
from services import notifications, orgs
from services.audit import audit_record
from services.error_codes import Code
from services.errors import (
    Conflict,
    DomainError,
    NotFound,
    PlanLimitReached,
    ValidationFailed,
    error_with_code,
)
from services.mail import mail_send
from services.policy import Action

INVITE_TTL = timedelta(days=7)
INVITABLE_ROLES = (OrgRole.admin, OrgRole.editor, OrgRole.viewer)
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class InviteView:
    """What the accept page shows. Holds no token or hash."""

    invite_id: int
    org_id: int
    org_name: str
    org_slug: str
    email: str
    role: str
    project_names: tuple[str, ...]
    invited_by_name: str
    expires_at: datetime


def accept_url_for(*, base_url: str, token: str) -> str:
    return routes.invite_accept(base_url, token)


def _normalize_email(email: str) -> str:
    normalized = (email or "").strip().lower()
    if len(normalized) > 320 or not _EMAIL_PATTERN.match(normalized):
        raise ValidationFailed(
            f"{email!r} does not look like an email address. Check it and try again.",
            field="email",
        )
    return normalized


def _invitable_role(role: OrgRole | str) -> OrgRole:
    try:
        parsed = OrgRole(role)
    except ValueError as exc:
        raise ValidationFailed(
            f"Unknown role {role!r}. Choose admin, editor or viewer.", field="role"
        ) from exc
    if parsed == OrgRole.owner:
        raise error_with_code(
            Code.role_not_invitable,
            "An invite cannot make someone an owner. Invite them as an admin, then transfer "
            "ownership to them in Team once they have joined.",
            base=ValidationFailed,
            field="role",
        )
    return parsed


def _is_expired(invite: Invite) -> bool:
    return as_utc(invite.expires_at) <= utcnow()


def _who_can_reissue(session: Session, org: Organization) -> str:
    names = orgs.org_admin_names(session=session, org_id=org.id)
    if not names:
        return f"an owner or admin of {org.name}"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"an owner or admin of {org.name} ({shown})"


def _unusable_error(
    session: Session, invite: Invite, org: Organization | None
) -> DomainError | None:
    """The error for an invite that can no longer be accepted, or None if it is usable."""
    if org is None or org.deleted_at is not None:
        return error_with_code(
            Code.invite_revoked,
            "This invite is no longer valid: the organization was deleted.",
            base=Conflict,
        )
    who = _who_can_reissue(session, org)
    status = invite.status
    if status == InviteStatus.pending.value and _is_expired(invite):
        status = InviteStatus.expired.value
    if status == InviteStatus.pending.value:
        return None
    messages = {
        InviteStatus.accepted.value: (
            Code.invite_accepted,
            f"This invite to {org.name} has already been used. If that was you, sign in as "
            f"{invite.email} to open the organization; otherwise ask {who} for a new invite.",
        ),
        InviteStatus.revoked.value: (
            Code.invite_revoked,
            f"This invite to {org.name} was withdrawn. Ask {who} to invite you again.",
        ),
        InviteStatus.expired.value: (
            Code.invite_expired,
            f"This invite to {org.name} expired on {as_utc(invite.expires_at):%Y-%m-%d %H:%M} "
            f"UTC (links last {INVITE_TTL.days} days). Ask {who} to resend it.",
        ),
        InviteStatus.superseded.value: (
            Code.invite_superseded,
            f"A newer invite to {org.name} was sent to {invite.email}, so this link no longer "
            f"works. Use the link in the most recent email, or ask {who} to resend it.",
        ),
    }
    code, message = messages.get(
        status, (Code.invite_revoked, f"This invite is no longer valid. Ask {who} for a new one.")
    )
    return error_with_code(code, message, base=Conflict)


def _invite_by_token(session: Session, token: str, *, lock: bool = False) -> Invite:
    query = select(Invite).where(Invite.token_hash == hash_token(token or ""))
    if lock:
        # FOR UPDATE on PostgreSQL (SQLite ignores it; its writers are serialized by
        # BEGIN IMMEDIATE). populate_existing: re-read the row after waiting for the lock.
        query = query.with_for_update().execution_options(populate_existing=True)
    invite = session.exec(query).first() if token else None
    if invite is None:
        raise error_with_code(
            Code.invite_not_found,
            "This invite link is not valid. Check that you copied the whole link, or ask the "
            "person who invited you to send it again.",
            base=NotFound,
        )
    return invite


def _invite_in_org(session: Session, org_id: int, invite_id: int) -> Invite:
    invite = session.get(Invite, invite_id)
    if invite is None or invite.org_id != org_id:
        raise error_with_code(
            Code.invite_not_found,
            "That invite no longer exists. Refresh the list of pending invites.",
            base=NotFound,
        )
    return invite


def _already_member_check(session: Session, org: Organization, email: str) -> None:
    member = session.exec(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org.id, User.email == email)
    ).first()
    if member is not None:
        raise error_with_code(
            Code.already_member,
            f"{email} is already a member of {org.name}. Change their role in Team instead.",
            base=Conflict,
            field="email",
        )


def _pending_invites_check(session: Session, org_id: int, exclude_invite_id: int | None) -> None:
    plan = orgs.org_plan(session=session, org_id=org_id)
    if plan.max_pending_invites is None:
        return
    used = orgs.pending_invites_count(
        session=session, org_id=org_id, exclude_invite_id=exclude_invite_id
    )
    if used >= plan.max_pending_invites:
        raise PlanLimitReached(
            f"Pending invite limit reached ({used} of {plan.max_pending_invites} on {plan.name}). "
            "Upgrade in Billing to send more invites, or revoke one that is no longer needed.",
            limit="pending_invites",
            used=used,
            allowed=plan.max_pending_invites,
            plan=plan.key,
        )


def _issue(
    session: Session,
    *,
    org_id: int,
    email: str,
    role: OrgRole,
    project_ids: list[int],
    invited_by_user_id: int | None,
) -> tuple[Invite, str]:
    token = new_token()
    invite = Invite(
        org_id=org_id,
        email=email,
        role=role.value,
        project_scoped=bool(project_ids),
        project_ids=list(project_ids),
        token_hash=hash_token(token),
        status=InviteStatus.pending.value,
        invited_by_user_id=invited_by_user_id,
        expires_at=utcnow() + INVITE_TTL,
    )
    session.add(invite)
    session.flush()
    return invite, token


def invite_mail_body(
    *, org_name: str, inviter: str, role: str, projects: list[str], url: str, expires_at: datetime
) -> str:
    """The text of an invitation mail (`role` is admin, editor or viewer)."""
    access = f" in the projects {', '.join(projects)}" if projects else ""
    return (
        f"Hello,\n\n{inviter} invited you to join {org_name} on Creative Studio as "
        f"{role.replace('_', ' ').lower()}{access}.\n\n"
        f"Open this link to accept the invitation:\n{url}\n\n"
        f"The link works once and expires on {as_utc(expires_at):%Y-%m-%d %H:%M} UTC "
        f"({INVITE_TTL.days} days). If you have no account yet, you can create "
        "one from that page with this email address.\n\n"
        "If you were not expecting this invitation, you can ignore this email.\n"
    )


def _invite_mail_send(
    session: Session, *, inviter: User, org: Organization, invite: Invite, url: str
) -> None:
    """Mail the accept link of `invite` (flushed into the outbox; the caller commits)."""
    projects: list[str] = []
    if invite.project_ids:
        projects = list(
            session.exec(
                select(Project.name)
                .where(
                    Project.org_id == org.id,
                    col(Project.id).in_(list(invite.project_ids)),
                    col(Project.archived_at).is_(None),
                )
                .order_by(func.lower(Project.name), Project.id)
            )
        )
    who = inviter.name or inviter.email
    mail_send(
        session=session,
        to=invite.email,
        subject=f"{who} invited you to {org.name} on Creative Studio",
        body_text=invite_mail_body(
            org_name=org.name,
            inviter=who,
            role=invite.role,
            projects=projects,
            url=url,
            expires_at=invite.expires_at,
        ),
    )


def invite_create(
    *,
    session: Session,
    actor: User,
    org_id: int,
    email: str,
    role: OrgRole | str,
    project_ids: list[int] | None = None,
    base_url: str,
) -> tuple[Invite, str]:
    """Invite `email` to the org with `role` and mail them the accept link.

    Returns:
        The invite and its accept URL (already mailed).

    Raises:
        PermissionDenied: the actor may not manage the team.
        ValidationFailed: bad email, unknown role, owner role (code "role_not_invitable"),
            projects for a non-editor.
        Conflict: code "already_member", or "invite_pending" (use resend instead).
        PlanLimitReached: limit "pending_invites" or "seats".
    """
    orgs._require(session, actor, org_id, Action.team_manage)
    org = orgs._org_get(session, org_id)
    email = _normalize_email(email)
    role = _invitable_role(role)
    ids = orgs._validated_project_ids(session, org_id, role, project_ids)
    _already_member_check(session, org, email)
    existing = session.exec(
        select(Invite).where(
            Invite.org_id == org_id,
            Invite.email == email,
            Invite.status == InviteStatus.pending.value,
            Invite.expires_at > utcnow(),
        )
    ).first()
    if existing is not None:
        raise error_with_code(
            Code.invite_pending,
            f"An invite to {email} is already pending (sent "
            f"{as_utc(existing.created_at):%Y-%m-%d}). Use Resend on the pending invite to "
            "send a fresh link.",
            base=Conflict,
            field="email",
            invite_id=existing.id,
        )
    _pending_invites_check(session, org_id, exclude_invite_id=None)
    orgs.seats_check(session=session, org_id=org_id)
    invite, token = _issue(
        session, org_id=org_id, email=email, role=role, project_ids=ids, invited_by_user_id=actor.id
    )
    audit_record(
        session=session,
        action="invite.created",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="invite",
        target_id=invite.id,
        details={"email": email, "role": role.value, "project_ids": ids},
    )
    url = accept_url_for(base_url=base_url, token=token)
    _invite_mail_send(session, inviter=actor, org=org, invite=invite, url=url)
    return invite, url


def invite_resend(
    *, session: Session, actor: User, org_id: int, invite_id: int, base_url: str
) -> tuple[Invite, str]:
    """Send a fresh link for a pending or expired invite.

    The old row becomes `superseded` (its link then says a newer invite was sent) and a
    new pending row with a new token and a new 7-day expiry is mailed and returned with
    its URL.

    Raises:
        Conflict: the invite was accepted or revoked (code invite_accepted/invite_revoked,
            or already_member when the person joined meanwhile).
        PlanLimitReached: reviving an expired invite needs a seat / pending-invite slot.
    """
    orgs._require(session, actor, org_id, Action.team_manage)
    org = orgs._org_get(session, org_id)
    old = _invite_in_org(session, org_id, invite_id)
    if old.status not in (InviteStatus.pending.value, InviteStatus.expired.value):
        error = _unusable_error(session, old, org)
        assert error is not None
        raise error
    _already_member_check(session, org, old.email)
    # The old invite is replaced, so it does not count twice against the limits.
    _pending_invites_check(session, org_id, exclude_invite_id=old.id)
    orgs.seats_check(session=session, org_id=org_id, exclude_invite_id=old.id)
    old.status = InviteStatus.superseded.value
    session.add(old)
    session.flush()
    role = OrgRole(old.role)
    invite, token = _issue(
        session,
        org_id=org_id,
        email=old.email,
        role=role,
        project_ids=list(old.project_ids or []),
        invited_by_user_id=actor.id,
    )
    audit_record(
        session=session,
        action="invite.resent",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="invite",
        target_id=invite.id,
        details={"email": old.email, "replaces_invite_id": old.id},
    )
    url = accept_url_for(base_url=base_url, token=token)
    _invite_mail_send(session, inviter=actor, org=org, invite=invite, url=url)
    return invite, url


def invite_revoke(*, session: Session, actor: User, org_id: int, invite_id: int) -> Invite:
    """Withdraw a pending (or expired) invite; its link then says it was withdrawn."""
    orgs._require(session, actor, org_id, Action.team_manage)
    org = orgs._org_get(session, org_id)
    invite = _invite_in_org(session, org_id, invite_id)
    if invite.status == InviteStatus.revoked.value:
        return invite
    if invite.status not in (InviteStatus.pending.value, InviteStatus.expired.value):
        error = _unusable_error(session, invite, org)
        assert error is not None
        raise error
    invite.status = InviteStatus.revoked.value
    invite.revoked_at = utcnow()
    session.add(invite)
    session.flush()
    audit_record(
        session=session,
        action="invite.revoked",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="invite",
        target_id=invite.id,
        details={"email": invite.email},
    )
    return invite


def invite_lookup(*, session: Session, token: str) -> InviteView:
    """What an invite link leads to, for the accept page.

    Raises:
        NotFound: code "invite_not_found" (unknown token).
        Conflict: code invite_accepted / invite_revoked / invite_expired / invite_superseded,
            with a message naming who can reissue it.
    """
    invite = _invite_by_token(session, token)
    org = session.get(Organization, invite.org_id)
    error = _unusable_error(session, invite, org)
    if error is not None:
        raise error
    project_names: tuple[str, ...] = ()
    if invite.project_ids:
        project_names = tuple(
            session.exec(
                select(Project.name)
                .where(col(Project.id).in_(list(invite.project_ids)))
                .order_by(Project.name)
            )
        )
    inviter = session.get(User, invite.invited_by_user_id) if invite.invited_by_user_id else None
    return InviteView(
        invite_id=invite.id,
        org_id=org.id,
        org_name=org.name,
        org_slug=org.slug,
        email=invite.email,
        role=invite.role,
        project_names=project_names,
        invited_by_name=(inviter.name or inviter.email) if inviter else "",
        expires_at=as_utc(invite.expires_at),
    )


def _existing_membership(session: Session, org_id: int, user_id: int) -> Membership | None:
    return session.exec(
        select(Membership)
        .where(Membership.org_id == org_id, Membership.user_id == user_id)
        .execution_options(populate_existing=True)
    ).first()


def invite_accept(*, session: Session, token: str, user: User) -> Membership:
    """Join the org with the invite's role. Idempotent for the same user.

    A second accept by the same user (also concurrently) returns the existing membership.

    Raises:
        NotFound: code "invite_not_found".
        Conflict: invite_accepted (by someone else) / invite_revoked / invite_expired /
            invite_superseded; invite_email_mismatch when signed in with another address.
        PlanLimitReached: limit "seats" (only if the plan shrank since the invite was sent).
    """
    invite = _invite_by_token(session, token, lock=True)
    org = session.get(Organization, invite.org_id)
    user_email = (user.email or "").strip().lower()

    if invite.status == InviteStatus.accepted.value and invite.accepted_by_user_id == user.id:
        membership = _existing_membership(session, invite.org_id, user.id)
        if membership is not None:
            return membership
    error = _unusable_error(session, invite, org)
    if error is not None:
        raise error
    if user_email != invite.email:
        raise error_with_code(
            Code.invite_email_mismatch,
            f"This invite was sent to {invite.email}, but you are signed in as {user_email}. "
            f"Sign out and sign in (or register) as {invite.email} to accept it, or ask "
            f"{_who_can_reissue(session, org)} to invite {user_email} instead.",
            base=Conflict,
            invited_email=invite.email,
            signed_in_email=user_email,
        )

    membership = _existing_membership(session, invite.org_id, user.id)
    created = False
    if membership is None:
        role = OrgRole(invite.role)
        orgs.seats_check(session=session, org_id=invite.org_id, exclude_invite_id=invite.id)
        # Projects archived or deleted since the invite was sent are dropped from the list.
        project_ids = (
            [
                project_id
                for project_id in session.exec(
                    select(Project.id).where(
                        Project.org_id == invite.org_id,
                        col(Project.id).in_(list(invite.project_ids or [])),
                        col(Project.archived_at).is_(None),
                    )
                )
            ]
            if invite.project_scoped
            else []
        )
        candidate = Membership(org_id=invite.org_id, user_id=user.id, role=role.value)
        try:
            with session.begin_nested():
                session.add(candidate)
                session.flush()
        except IntegrityError:
            # Joined at the same moment through another path: keep the existing membership.
            membership = _existing_membership(session, invite.org_id, user.id)
            if membership is None:
                raise
        else:
            membership, created = candidate, True
            if invite.project_scoped:
                orgs._set_project_access(session, membership, project_ids)
                # Still scoped when every approved project is gone: sees nothing rather than all.
                membership.project_scoped = True
                session.add(membership)
                session.flush()

    invite.status = InviteStatus.accepted.value
    invite.accepted_at = utcnow()
    invite.accepted_by_user_id = user.id
    session.add(invite)
    session.flush()
    audit_record(
        session=session,
        action="invite.accepted",
        actor_user_id=user.id,
        org_id=invite.org_id,
        target_type="invite",
        target_id=invite.id,
        details={
            "email": invite.email,
            "role": membership.role,
            "membership_id": membership.id,
            "joined": created,
        },
    )
    # Past the early return above: this call moved the (locked) invite to accepted, once.
    notifications.invite_accepted_notify(session=session, invite=invite, member=user)
    return membership


def invites_pending(*, session: Session, org_id: int) -> list[Invite]:
    """Pending, unexpired invites, newest first. The caller checks Action.team_view."""
    return list(
        session.exec(
            select(Invite)
            .where(
                Invite.org_id == org_id,
                Invite.status == InviteStatus.pending.value,
                Invite.expires_at > utcnow(),
            )
            .order_by(col(Invite.created_at).desc(), col(Invite.id).desc())
        )
    )


def invite_confirms_email(*, session: Session, token: str, user: User) -> bool:
    """Mark `user`'s email verified when a still-usable invite link was sent to that address.

    Opening the invite link proves control of the mailbox, as a verification link would, so
    a person who registers from an invite need not wait for a second mail. Flushes; the
    caller commits. The invite itself is not consumed (accepting it is a separate step).

    Returns:
        True when the user's email is verified (now or already) through this invite;
        False when the token is unknown, the invite is no longer usable, or the addresses differ.
    """
    try:
        invite = _invite_by_token(session, token)
    except NotFound:
        return False
    org = session.get(Organization, invite.org_id)
    if _unusable_error(session, invite, org) is not None:
        return False
    if (user.email or "").strip().lower() != invite.email:
        return False
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        session.add(user)
        session.flush()
        audit_record(
            session=session,
            action="user.email_verified_by_invite",
            actor_user_id=user.id,
            org_id=invite.org_id,
            target_type="user",
            target_id=user.id,
            details={"invite_id": invite.id},
        )
    return True
