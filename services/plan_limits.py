"""Plan limits: which plan applies to an organization, what it has used, and the checks that
refuse one more seat, project or owned organization.

Every check raises `PlanLimitReached` with a message naming the limit, its value and the way
out ("Upgrade in Billing to ..."); `plan_usage` gives the used/allowed figures the notices show.
This module only reads (no Reflex, no policy), so the services that need a plan's limits
(orgs, invites, billing, the model registry, generations) import it without import circles.

Transactions: read only; nothing here flushes, commits or rolls back.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import db
from core.clock import utcnow
from models import Invite, Membership, Organization, Plan, Project, Subscription, User
from models.enums import InviteStatus, OrgRole
from services.catalog import plan_get
from services.errors import PlanLimitReached
from services.policy import subscription_facts


def org_plan(*, session: Session, org_id: int) -> Plan:
    """The plan whose limits apply to the org (the subscription's plan, else the org's)."""
    return db.read_once(session, ("org_plan", org_id), lambda: _org_plan_read(session, org_id))


def _org_plan_read(session: Session, org_id: int) -> Plan:
    _status, plan_key = subscription_facts(session=session, org_id=org_id)
    if plan_key is None:
        org = session.get(Organization, org_id)
        plan_key = org.plan_key if org is not None else "free"
    return plan_get(session=session, key=plan_key)


def _limit_reached(
    *, limit: str, label: str, used: int, allowed: int, plan: Plan, to_do: str
) -> PlanLimitReached:
    return PlanLimitReached(
        f"{label} limit reached ({used} of {allowed} on {plan.name}). "
        f"Upgrade in Billing to {to_do}.",
        limit=limit,
        used=used,
        allowed=allowed,
        plan=plan.key,
    )


def members_count(*, session: Session, org_id: int) -> int:
    return session.exec(
        select(func.count()).select_from(Membership).where(Membership.org_id == org_id)
    ).one()


def pending_invites_count(
    *, session: Session, org_id: int, exclude_invite_id: int | None = None
) -> int:
    """Invites still pending and not yet expired (an expired link no longer holds a seat)."""
    query = (
        select(func.count())
        .select_from(Invite)
        .where(
            Invite.org_id == org_id,
            Invite.status == InviteStatus.pending.value,
            Invite.expires_at > utcnow(),
        )
    )
    if exclude_invite_id is not None:
        query = query.where(Invite.id != exclude_invite_id)
    return session.exec(query).one()


def active_projects_count(*, session: Session, org_id: int) -> int:
    return session.exec(
        select(func.count())
        .select_from(Project)
        .where(Project.org_id == org_id, col(Project.archived_at).is_(None))
    ).one()


def seats_check(
    *, session: Session, org_id: int, adding: int = 1, exclude_invite_id: int | None = None
) -> None:
    """Raise PlanLimitReached unless `adding` more seats fit (members + pending invites).

    `exclude_invite_id`: an invite being converted or replaced, already counted once.
    """
    plan = org_plan(session=session, org_id=org_id)
    if plan.max_seats is None:
        return
    used = members_count(session=session, org_id=org_id) + pending_invites_count(
        session=session, org_id=org_id, exclude_invite_id=exclude_invite_id
    )
    if used + adding > plan.max_seats:
        raise _limit_reached(
            limit="seats",
            label="Seat",
            used=used,
            allowed=plan.max_seats,
            plan=plan,
            to_do="add more members",
        )


def projects_check(*, session: Session, org_id: int) -> None:
    """Raise PlanLimitReached if one more active project does not fit the plan."""
    plan = org_plan(session=session, org_id=org_id)
    if plan.max_projects is None:
        return
    used = active_projects_count(session=session, org_id=org_id)
    if used >= plan.max_projects:
        raise _limit_reached(
            limit="projects",
            label="Project",
            used=used,
            allowed=plan.max_projects,
            plan=plan,
            to_do="add more projects, or archive one you no longer use",
        )


def orgs_owned_check(*, session: Session, owner: User) -> None:
    """Raise PlanLimitReached if `owner` may not own one more organization.

    The limit is the highest `max_orgs_owned` among the plans of the orgs the user owns
    (the Free plan's when they own none).
    """
    owned_plan_keys = list(
        session.exec(
            select(func.coalesce(Subscription.plan_key, Organization.plan_key))
            .select_from(Organization)
            .join(Membership, Membership.org_id == Organization.id)
            .outerjoin(Subscription, Subscription.org_id == Organization.id)
            .where(
                Membership.user_id == owner.id,
                Membership.role == OrgRole.owner.value,
                col(Organization.deleted_at).is_(None),
            )
        )
    )
    used = len(owned_plan_keys)
    plans = [plan_get(session=session, key=key) for key in set(owned_plan_keys)] or [
        plan_get(session=session, key="free")
    ]
    if any(plan.max_orgs_owned is None for plan in plans):
        return
    best = max(plans, key=lambda plan: (plan.max_orgs_owned, plan.rank))
    if used >= best.max_orgs_owned:
        raise _limit_reached(
            limit="orgs_owned",
            label="Organization",
            used=used,
            allowed=best.max_orgs_owned,
            plan=best,
            to_do="own more organizations",
        )


def plan_usage(*, session: Session, org_id: int) -> dict:
    """Used/allowed figures for the UI notices. `allowed` None means unlimited.

    Returns:
        {"plan": {"key", "name"}, "seats": {"used", "allowed"}, "members": int,
         "projects": {"used", "allowed"}, "pending_invites": {"used", "allowed"}}
        Seats count members plus pending (unexpired) invites.
    """
    plan = org_plan(session=session, org_id=org_id)
    members = members_count(session=session, org_id=org_id)
    pending = pending_invites_count(session=session, org_id=org_id)
    return {
        "plan": {"key": plan.key, "name": plan.name},
        "members": members,
        "seats": {"used": members + pending, "allowed": plan.max_seats},
        "projects": {
            "used": active_projects_count(session=session, org_id=org_id),
            "allowed": plan.max_projects,
        },
        "pending_invites": {"used": pending, "allowed": plan.max_pending_invites},
    }
