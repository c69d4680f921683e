"""The single allow/deny module: who may do what, where.

`can(actor, action, target)` is pure (no database); `actor_for` and `target_for` load what it
needs. `require` turns a refusal into a typed domain error. Every service that mutates org
data calls `require(actor_for(...), Action..., target_for(...))` before touching rows.

The rules (DESIGN.md "Roles and access"):
- Roles owner > admin > editor > viewer. Viewers read but never run tools.
- A project-scoped editor sees and runs only in its approved projects; other projects and
  their assets are *not found* (404), so their existence does not leak.
- Billing mutations are owner-only; every member may open Billing read-only.
- Analytics and the audit log are for owners/admins and operators.
- An inactive (expired, unpaid, canceled) subscription locks `tool_run`; reading stays.
- Platform operators (a flag on the user, not an org role) may view any org and perform the
  operator_* actions; when they are not members they cannot act inside a customer org.
- An operator "viewing as" a customer (an active ViewAsGrant) reads what members read and is
  refused every mutating action (`MUTATING_ACTIONS`), operator actions included.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import bindparam
from sqlmodel import Session, select

from core import db
from core.clock import utcnow
from models import (
    Membership,
    Organization,
    Project,
    ProjectAccess,
    Subscription,
    User,
    ViewAsGrant,
)
from models.enums import RUNNABLE_SUBSCRIPTION_STATUSES, OrgRole
from services.error_codes import Code
from services.errors import NotFound, PermissionDenied, error_with_code


class Action(StrEnum):
    # Reading an organization's content
    org_view = "org_view"
    project_view = "project_view"
    asset_view = "asset_view"
    # Working in it
    tool_run = "tool_run"  # generations, Marketing Assistant, Competitor Intel
    asset_manage = "asset_manage"  # delete / rename assets
    project_manage = "project_manage"  # create / rename / archive projects
    brand_kit_manage = "brand_kit_manage"  # edit the organization's or a project's brand kit
    # Team
    team_view = "team_view"
    team_manage = "team_manage"  # invite, remove, change role
    # Organization
    org_manage = "org_manage"  # rename, change slug
    org_delete = "org_delete"
    ownership_transfer = "ownership_transfer"
    # Billing, analytics, settings
    billing_view = "billing_view"
    billing_manage = "billing_manage"  # checkout, top-ups, spend controls, portal, pools
    analytics_view = "analytics_view"
    api_keys_manage = "api_keys_manage"
    connections_manage = "connections_manage"
    audit_view = "audit_view"
    sso_manage = "sso_manage"  # single sign-on, verified domains, require SSO / 2FA
    # Platform staff
    operator_access = "operator_access"  # see all customers
    operator_refund = "operator_refund"
    operator_adjust = "operator_adjust"
    operator_models = "operator_models"  # disable / swap models
    operator_support = "operator_support"


@dataclass(frozen=True)
class Actor:
    user_id: int
    is_operator: bool = False
    role: OrgRole | None = None  # role in the target org; None = not a member
    project_scoped: bool = False
    project_ids: frozenset[int] = frozenset()
    viewing_as: bool = False  # an operator's read-only "view as customer" is active here


@dataclass(frozen=True)
class Target:
    org_id: int | None = None
    project_id: int | None = None
    subscription_executable: bool = True


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str = ""  # "" when allowed
    message: str = ""  # for a person: what, why, what next

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)

_ALL_ROLES = frozenset(OrgRole)
_OWNER = frozenset({OrgRole.owner})
_OWNER_ADMIN = frozenset({OrgRole.owner, OrgRole.admin})
_WORKERS = frozenset({OrgRole.owner, OrgRole.admin, OrgRole.editor})

# Which org roles may perform each (non-operator) action.
ROLE_RULES: dict[Action, frozenset[OrgRole]] = {
    Action.org_view: _ALL_ROLES,
    Action.project_view: _ALL_ROLES,
    Action.asset_view: _ALL_ROLES,
    Action.tool_run: _WORKERS,
    Action.asset_manage: _WORKERS,
    Action.project_manage: _OWNER_ADMIN,
    Action.brand_kit_manage: _WORKERS,
    Action.team_view: _ALL_ROLES,
    Action.team_manage: _OWNER_ADMIN,
    Action.org_manage: _OWNER_ADMIN,
    Action.org_delete: _OWNER,
    Action.ownership_transfer: _OWNER,
    Action.billing_view: _ALL_ROLES,
    Action.billing_manage: _OWNER,
    Action.analytics_view: _OWNER_ADMIN,
    Action.api_keys_manage: _OWNER_ADMIN,
    Action.connections_manage: _OWNER_ADMIN,
    Action.audit_view: _OWNER_ADMIN,
    Action.sso_manage: _OWNER,
}

OPERATOR_ACTIONS = frozenset(
    {
        Action.operator_access,
        Action.operator_refund,
        Action.operator_adjust,
        Action.operator_models,
        Action.operator_support,
    }
)

# What an operator may read in any customer org without being a member.
OPERATOR_READABLE = frozenset(
    {
        Action.org_view,
        Action.project_view,
        Action.asset_view,
        Action.team_view,
        Action.billing_view,
        Action.analytics_view,
        Action.audit_view,
    }
)

# What an operator viewing as a customer may do: read. Every other action (present and future)
# is mutating and refused while viewing as.
READ_ONLY_ACTIONS = frozenset(
    {
        Action.org_view,
        Action.project_view,
        Action.asset_view,
        Action.team_view,
        Action.billing_view,
        Action.analytics_view,
        Action.audit_view,
        Action.operator_access,
    }
)
MUTATING_ACTIONS = frozenset(Action) - READ_ONLY_ACTIONS

# Actions bound to one project: a project-scoped actor is limited to its approved projects.
PROJECT_BOUND = frozenset(
    {
        Action.project_view,
        Action.asset_view,
        Action.tool_run,
        Action.asset_manage,
        Action.brand_kit_manage,
    }
)

# Actions an inactive subscription locks (execution only; reading stays available).
EXECUTION = frozenset({Action.tool_run})

_FORBIDDEN_MESSAGES: dict[Action, str] = {
    Action.tool_run: (
        "Viewers can look at projects and assets but cannot run tools. "
        "Ask an owner or admin to make you an editor."
    ),
    Action.asset_manage: (
        "Viewers cannot delete or rename assets. Ask an owner or admin to make you an editor."
    ),
    Action.brand_kit_manage: (
        "Viewers can read brand kits but cannot change them. "
        "Ask an owner or admin to make you an editor."
    ),
    Action.project_manage: (
        "Only owners and admins can create, rename or archive projects. "
        "Ask one of them to make the change."
    ),
    Action.team_manage: (
        "Only owners and admins can invite, remove or change members. "
        "Ask one of them to make the change."
    ),
    Action.org_manage: (
        "Only owners and admins can rename the organization or change its address. "
        "Ask one of them to make the change."
    ),
    Action.org_delete: (
        "Only the organization owner can delete the organization. Ask your owner to do it."
    ),
    Action.ownership_transfer: (
        "Only the organization owner can transfer ownership. Ask your owner to do it."
    ),
    Action.billing_manage: (
        "Only the organization owner can change billing. Ask your owner to make this change, "
        "or to transfer ownership to you."
    ),
    Action.analytics_view: (
        "Analytics is available to organization owners and admins. "
        "Ask an admin if you need usage figures."
    ),
    Action.api_keys_manage: (
        "Only owners and admins can manage API keys. Ask one of them to create a key for you."
    ),
    Action.connections_manage: (
        "Only owners and admins can connect or disconnect platforms. Ask one of them to do it."
    ),
    Action.audit_view: (
        "The audit log is available to organization owners and admins. "
        "Ask one of them if you need to check a change."
    ),
    Action.sso_manage: (
        "Only the organization owner can change single sign-on, verified domains or "
        "two-factor requirements. Ask your owner to make the change."
    ),
}


def _deny(code: Code, message: str) -> Decision:
    return Decision(False, code.value, message)


def can(actor: Actor, action: Action, target: Target) -> Decision:
    """Decide whether `actor` may perform `action` on `target`. Pure: no I/O.

    Order of checks: operator-only actions; membership (operators may read any org);
    project scope (out-of-scope is "not found"); role; subscription (execution only).
    """
    action = Action(action)
    if actor.viewing_as:
        if action in READ_ONLY_ACTIONS:
            return ALLOW
        return _deny(
            Code.view_as_read_only,
            "You are viewing this organization as its members see it, which is read-only. "
            "Stop viewing as (banner at the top) to make changes from the operator console.",
        )
    if action in OPERATOR_ACTIONS:
        if actor.is_operator:
            return ALLOW
        return _deny(
            Code.operator_only,
            "This is available to platform operators only. "
            "Contact support if you need help with your account.",
        )

    if actor.is_operator and action in OPERATOR_READABLE:
        return ALLOW

    if actor.role is None:
        if actor.is_operator:
            return _deny(
                Code.not_a_member,
                "Operators can view this organization but cannot act inside it. "
                "Use the operator tools, or ask the customer to invite you.",
            )
        return _deny(
            Code.not_a_member,
            "You are not a member of this organization. "
            "Ask one of its owners or admins to invite you.",
        )

    role = OrgRole(actor.role)

    if action in PROJECT_BOUND and actor.project_scoped:
        if target.project_id is not None and target.project_id not in actor.project_ids:
            return _deny(
                Code.project_not_found,
                "This project does not exist or you do not have access to it. "
                "Pick one of your projects, or ask an owner or admin for access.",
            )
        if target.project_id is None and action == Action.asset_view:
            # Org-level assets belong to no approved project: invisible, like other projects'.
            return _deny(
                Code.project_not_found,
                "This asset does not exist or you do not have access to it.",
            )
        if target.project_id is None and action in (
            Action.tool_run,
            Action.asset_manage,
            Action.brand_kit_manage,
        ):
            return _deny(
                Code.project_required,
                "You can work only inside the projects you were given access to. "
                "Open one of them and try again.",
            )

    if role not in ROLE_RULES[action]:
        message = _FORBIDDEN_MESSAGES.get(
            action,
            "Your role does not allow this. Ask an owner or admin of the organization.",
        )
        return _deny(Code.role_forbidden, message)

    if action in EXECUTION and not target.subscription_executable:
        if role == OrgRole.owner:
            next_step = (
                "Pay the open invoice or update the payment method in Billing (Manage billing), "
                "or choose a plan there, to run tools again."
            )
        else:
            next_step = "Ask your owner to pay or renew it in Billing to run tools again."
        return _deny(
            Code.subscription_inactive,
            "This organization's subscription has expired or its last payment failed, so tools "
            f"are paused. You can still view everything. {next_step}",
        )

    return ALLOW


def require(actor: Actor, action: Action, target: Target) -> None:
    """Raise unless allowed.

    Raises:
        NotFound: the project is outside the actor's scope (existence must not leak).
        PermissionDenied: any other refusal; its `code` is the decision's code.
    """
    decision = can(actor, action, target)
    if decision:
        return
    if decision.code == Code.project_not_found:
        raise error_with_code(decision.code, decision.message, base=NotFound)
    raise error_with_code(decision.code, decision.message, base=PermissionDenied)


def _actor_key(user_id: int | None, is_operator: bool, org_id: int | None) -> tuple:
    return ("actor", user_id, bool(is_operator), org_id)


def actor_for(*, session: Session, user: User, org_id: int | None) -> Actor:
    """The actor for `user` in `org_id`, with its role and approved projects (if scoped)."""
    if user.id is None:
        raise ValueError("actor_for needs a saved user")
    return db.read_once(
        session,
        _actor_key(user.id, user.is_operator, org_id),
        lambda: _actor_read(session, user, org_id),
    )


def facts_known(
    *,
    session: Session,
    user_id: int,
    is_operator: bool,
    org_id: int,
    actor: Actor,
    subscription: tuple[str | None, str | None],
) -> None:
    """Who acts and the org's subscription, resolved moments ago (a page's identity handed to
    its next reads): `actor_for` and `subscription_facts` answer them in this unit of work."""
    db.remember_read(session, _actor_key(user_id, is_operator, org_id), actor)
    db.remember_read(session, ("subscription", org_id), subscription)


def actor_with_membership(
    *, session: Session, user: User, org_id: int, membership: Membership | None
) -> Actor:
    """The actor for `user` in `org_id` from their membership row, already read with the org
    (None: not a member); `actor_for` answers it for the rest of the unit of work."""
    actor = _actor_build(session, user, org_id, membership)
    db.remember_read(session, _actor_key(user.id, user.is_operator, org_id), actor)
    return actor


def _actor_read(session: Session, user: User, org_id: int | None) -> Actor:
    membership = None
    if org_id is not None:
        membership = session.exec(
            select(Membership).where(Membership.org_id == org_id, Membership.user_id == user.id)
        ).first()
    return _actor_build(session, user, org_id, membership)


def _actor_build(
    session: Session, user: User, org_id: int | None, membership: Membership | None
) -> Actor:
    viewing_as = (
        bool(user.is_operator)
        and org_id is not None
        and view_as_active(session=session, user_id=user.id, org_id=org_id)
    )
    if membership is None:
        return Actor(user_id=user.id, is_operator=bool(user.is_operator), viewing_as=viewing_as)
    project_ids: frozenset[int] = frozenset()
    if membership.project_scoped:
        project_ids = frozenset(
            session.exec(
                select(ProjectAccess.project_id).where(ProjectAccess.membership_id == membership.id)
            )
        )
    return Actor(
        user_id=user.id,
        is_operator=bool(user.is_operator),
        role=OrgRole(membership.role),
        project_scoped=membership.project_scoped,
        project_ids=project_ids,
        viewing_as=viewing_as,
    )


def view_as_active(*, session: Session, user_id: int, org_id: int) -> ViewAsGrant | None:
    """The operator's unexpired, unstopped view-as grant on `org_id`, if any."""
    return session.exec(
        select(ViewAsGrant)
        .where(
            ViewAsGrant.operator_user_id == user_id,
            ViewAsGrant.org_id == org_id,
            ViewAsGrant.ended_at.is_(None),  # type: ignore[union-attr]
            ViewAsGrant.expires_at > utcnow(),
        )
        .order_by(ViewAsGrant.id.desc())  # type: ignore[union-attr]
    ).first()


_SUBSCRIPTION_FACTS = select(Subscription.status, Subscription.plan_key).where(
    Subscription.org_id == bindparam("org_id")
)  # built once: every event of an org page asks it


def subscription_facts(*, session: Session, org_id: int) -> tuple[str | None, str | None]:
    """(status, plan key) of the org's subscription, (None, None) without one; read once per
    unit of work (whether it may run and which plan's limits apply ask the same row)."""

    def read() -> tuple[str | None, str | None]:
        row = session.exec(_SUBSCRIPTION_FACTS, params={"org_id": org_id}).first()
        return (row[0], row[1]) if row is not None else (None, None)

    return db.read_once(session, ("subscription", org_id), read)


def target_for(*, session: Session, org_id: int, project_id: int | None = None) -> Target:
    """The target org (and project), with whether its subscription allows execution.

    An org with no Subscription row counts as active (free plan).

    Raises:
        NotFound: the org does not exist or was deleted, or the project is not in that org.
    """
    org = session.get(Organization, org_id)
    if org is None or org.deleted_at is not None:
        raise error_with_code(
            Code.org_not_found,
            "This organization does not exist or was deleted. Pick another from the switcher.",
            base=NotFound,
        )
    if project_id is not None:
        # Kept for the unit of work: several checks of one event ask about the same project.
        project = db.read_once(
            session, ("project", project_id), lambda: session.get(Project, project_id)
        )
        if project is None or project.org_id != org_id:
            raise error_with_code(
                Code.project_not_found,
                "This project does not exist or you do not have access to it. "
                "Pick one of your projects, or ask an owner or admin for access.",
                base=NotFound,
            )
    status, _plan_key = subscription_facts(session=session, org_id=org_id)
    executable = status is None or status in RUNNABLE_SUBSCRIPTION_STATUSES
    return Target(org_id=org_id, project_id=project_id, subscription_executable=executable)
