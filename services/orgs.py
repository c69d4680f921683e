"""Organizations, projects and team membership.

Transaction boundary: every function here works inside the caller's transaction. It
flushes (so ids exist and constraints fire) but never commits; the caller (a state event
handler, an API route, the dev seed) commits, e.g. with `core.db.session_scope()`.

Every mutating function re-checks permission through `services.policy` and writes an
audit entry. Plan guardrails (orgs owned, projects, seats) live in `services.plan_limits`
and raise `PlanLimitReached` with a message naming the limit, its value and the way out
(Billing); their names stay importable from here.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from core import db
from core.clock import as_utc, utcnow
from models import (
    CreditAccount,
    Invite,
    Membership,
    Organization,
    Project,
    ProjectAccess,
    Subscription,
    User,
)
from models.enums import InviteStatus, OrgRole, SubscriptionStatus
from models.forms import OrgOldAddress
from services import policy
from services.audit import audit_record
from services.catalog import plan_get
from services.error_codes import Code
from services.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    error_with_code,
)
from services.plan_limits import (  # noqa: F401  (re-exported: callers import them from here)
    active_projects_count,
    members_count,
    org_plan,
    orgs_owned_check,
    pending_invites_count,
    plan_usage,
    projects_check,
    seats_check,
)
from services.policy import Action, Actor

SLUG_MIN_LENGTH = 3
SLUG_MAX_LENGTH = 48
_SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
# Words that are (or may become) top-level routes or would mislead in a URL.
RESERVED_SLUGS = frozenset(
    {
        "admin", "api", "app", "assets", "auth", "billing", "dashboard", "dev", "docs", "help",
        "invite", "invites", "login", "logout", "new", "operator", "operators", "org", "orgs",
        "register", "root", "settings", "sign-in", "sign-out", "signin", "signup", "static",
        "status", "support", "system", "team", "v1", "www",
    }
)  # fmt: skip
NAME_MAX_LENGTH = 120
# How long links to an organization's previous address still lead to it.
OLD_ADDRESS_REDIRECT_FOR = timedelta(days=90)

_ROLE_ORDER = {OrgRole.owner: 0, OrgRole.admin: 1, OrgRole.editor: 2, OrgRole.viewer: 3}


# --- helpers -----------------------------------------------------------------------------------


def _require(
    session: Session, user: User, org_id: int, action: Action, project_id: int | None = None
) -> Actor:
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    policy.require(
        actor, action, policy.target_for(session=session, org_id=org_id, project_id=project_id)
    )
    return actor


def _clean_name(name: str, *, what: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ValidationFailed(f"Enter a name for the {what}.", field="name")
    if len(cleaned) > NAME_MAX_LENGTH:
        raise ValidationFailed(
            f"The {what} name is too long ({len(cleaned)} characters). "
            f"Use at most {NAME_MAX_LENGTH}.",
            field="name",
        )
    return cleaned


def _org_get(session: Session, org_id: int) -> Organization:
    org = session.get(Organization, org_id)
    if org is None or org.deleted_at is not None:
        raise error_with_code(
            Code.org_not_found,
            "This organization does not exist or was deleted. Pick another from the switcher.",
            base=NotFound,
        )
    return org


def _membership_get(session: Session, org_id: int, user_id: int) -> Membership | None:
    return session.exec(
        select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
    ).first()


def _member_required(session: Session, org_id: int, user_id: int) -> Membership:
    membership = _membership_get(session, org_id, user_id)
    if membership is None:
        raise error_with_code(
            Code.member_not_found,
            "That person is not a member of this organization (they may have left already). "
            "Refresh the team list.",
            base=NotFound,
        )
    return membership


def _count_owners(session: Session, org_id: int) -> int:
    return session.exec(
        select(func.count())
        .select_from(Membership)
        .where(Membership.org_id == org_id, Membership.role == OrgRole.owner.value)
    ).one()


def _validated_project_ids(
    session: Session, org_id: int, role: OrgRole, project_ids: list[int] | None
) -> list[int]:
    ids = sorted(set(project_ids or []))
    if not ids:
        return []
    if role != OrgRole.editor:
        raise ValidationFailed(
            "Only editors can be limited to projects. Choose the editor role, "
            "or give full access without picking projects.",
            field="project_ids",
        )
    found = set(
        session.exec(
            select(Project.id).where(
                Project.org_id == org_id,
                col(Project.id).in_(ids),
                col(Project.archived_at).is_(None),
            )
        )
    )
    if found != set(ids):
        raise ValidationFailed(
            "One of the selected projects no longer exists or is archived. "
            "Refresh the project list and choose again.",
            field="project_ids",
        )
    return ids


def _set_project_access(session: Session, membership: Membership, project_ids: list[int]) -> None:
    for access in session.exec(
        select(ProjectAccess).where(ProjectAccess.membership_id == membership.id)
    ):
        session.delete(access)
    session.flush()
    membership.project_scoped = bool(project_ids)
    for project_id in project_ids:
        session.add(ProjectAccess(membership_id=membership.id, project_id=project_id))
    session.flush()


def _role(value: OrgRole | str) -> OrgRole:
    try:
        return OrgRole(value)
    except ValueError as exc:
        raise ValidationFailed(
            f"Unknown role {value!r}. Choose owner, admin, editor or viewer.", field="role"
        ) from exc


# --- slugs ---------------------------------------------------------------------------------------


def slugify_org_name(name: str) -> str:
    """A URL slug from a name: ASCII, lower-case, words joined by '-', at most 48 characters.

    May be shorter than the 3-character minimum (or empty); `org_create` pads it.
    """
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    ascii_name = ascii_name.replace("'", "")  # "Nia's Agency" -> "nias-agency", not "nia-s-agency"
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:SLUG_MAX_LENGTH].rstrip("-")


def is_slug_shaped(value: str) -> bool:
    """Whether `value` looks like an organization address (safe to echo in a message)."""
    return SLUG_MIN_LENGTH <= len(value or "") <= SLUG_MAX_LENGTH and bool(
        _SLUG_PATTERN.match(value)
    )


def slug_validate(slug: str) -> str:
    """Return the slug if it is well-formed and not reserved, else raise ValidationFailed."""
    slug = (slug or "").strip().lower()
    if not SLUG_MIN_LENGTH <= len(slug) <= SLUG_MAX_LENGTH or not _SLUG_PATTERN.match(slug):
        raise error_with_code(
            Code.slug_invalid,
            f"The address must be {SLUG_MIN_LENGTH}-{SLUG_MAX_LENGTH} characters of lower-case "
            "letters, digits and hyphens, starting and ending with a letter or digit "
            "(for example acme-marketing).",
            base=ValidationFailed,
            field="slug",
        )
    if slug in RESERVED_SLUGS:
        raise error_with_code(
            Code.slug_reserved,
            f"The address {slug!r} is reserved by the app. Choose another, e.g. {slug}-team.",
            base=ValidationFailed,
            field="slug",
        )
    return slug


def _slug_taken(session: Session, slug: str, *, org_id: int | None = None) -> bool:
    # Deleted orgs keep their slug, and an old address stays with its organization: old links
    # must never reach a new tenant. `org_id` may take back an old address of its own.
    if session.exec(select(Organization.id).where(Organization.slug == slug)).first():
        return True
    old = session.exec(select(OrgOldAddress).where(OrgOldAddress.slug == slug)).first()
    return old is not None and old.org_id != org_id


def _slug_taken_error(slug: str) -> Conflict:
    return error_with_code(
        Code.slug_taken,
        f"The address {slug!r} is already used by another organization. Choose another.",
        base=Conflict,
        field="slug",
    )


def _unique_slug_from_name(session: Session, name: str) -> str:
    base = slugify_org_name(name)
    if len(base) < SLUG_MIN_LENGTH:
        base = f"{base}-team" if base else "organization"
    if base in RESERVED_SLUGS:
        base = f"{base}-team"
    candidate, number = base, 1
    while _slug_taken(session, candidate):
        number += 1
        suffix = f"-{number}"
        candidate = base[: SLUG_MAX_LENGTH - len(suffix)].rstrip("-") + suffix
    return candidate


# --- organizations ---------------------------------------------------------------------------


def org_create(
    *,
    session: Session,
    owner: User,
    name: str,
    slug: str | None = None,
    plan_key: str = "free",
) -> Organization:
    """Create an organization owned by `owner`, with its subscription and credit account.

    Args:
        slug: explicit address; derived from the name (with -2, -3... on clash) when None.
        plan_key: the starting plan (the subscription starts active on it).

    Raises:
        PlanLimitReached: limit "orgs_owned".
        ValidationFailed: bad name or slug (codes slug_invalid, slug_reserved).
        Conflict: an explicit slug is taken (code slug_taken).
    """
    name = _clean_name(name, what="organization")
    plan = plan_get(session=session, key=plan_key)
    orgs_owned_check(session=session, owner=owner)
    if slug is None:
        slug = _unique_slug_from_name(session, name)
    else:
        slug = slug_validate(slug)
        if _slug_taken(session, slug):
            raise _slug_taken_error(slug)

    org = Organization(slug=slug, name=name, plan_key=plan.key, created_by_user_id=owner.id)
    session.add(org)
    session.flush()
    session.add(Membership(org_id=org.id, user_id=owner.id, role=OrgRole.owner.value))
    session.add(
        Subscription(org_id=org.id, plan_key=plan.key, status=SubscriptionStatus.active.value)
    )
    session.add(CreditAccount(org_id=org.id, balance_millicredits=0))
    session.flush()
    _first_monthly_grant(session, org, plan)
    audit_record(
        session=session,
        action="org.created",
        actor_user_id=owner.id,
        org_id=org.id,
        target_type="organization",
        target_id=org.id,
        details={"slug": slug, "name": name, "plan": plan.key},
    )
    return org


def _first_monthly_grant(session: Session, org: Organization, plan) -> None:
    """A plan not billed by Stripe (Free) gets this month's credits now, not at the next hourly
    run of the monthly job: same key, reference and amount as that job, so it grants once."""
    if plan.price_cents_monthly > 0 or plan.monthly_credits <= 0:
        return  # paid plans get their credits with each paid invoice
    from services.credits import MILLICREDITS_PER_CREDIT, credits_grant
    from services.housekeeping import monthly_grant_key

    now = utcnow()
    credits_grant(
        session=session,
        org_id=org.id,
        amount_millicredits=int(plan.monthly_credits) * MILLICREDITS_PER_CREDIT,
        idempotency_key=monthly_grant_key(org.id, now),
        reference=f"monthly:{now:%Y-%m}",
        memo=f"{plan.name} plan monthly credits for {now:%B %Y}",
    )


def org_rename(*, session: Session, actor: User, org_id: int, name: str) -> Organization:
    _require(session, actor, org_id, Action.org_manage)
    org = _org_get(session, org_id)
    name = _clean_name(name, what="organization")
    old = org.name
    org.name = name
    session.add(org)
    session.flush()
    audit_record(
        session=session,
        action="org.renamed",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="organization",
        target_id=org_id,
        details={"from": old, "to": name},
    )
    return org


def org_change_slug(*, session: Session, actor: User, org_id: int, slug: str) -> Organization:
    """Change the org's address. Old links stop working; the slug is never reused."""
    _require(session, actor, org_id, Action.org_manage)
    org = _org_get(session, org_id)
    slug = org_change_slug_check(session=session, org=org, slug=slug)
    if slug == org.slug:
        return org
    old = org.slug
    taken_back = session.exec(select(OrgOldAddress).where(OrgOldAddress.slug == slug)).first()
    if taken_back is not None:
        session.delete(taken_back)
    org.slug = slug
    session.add(org)
    session.add(
        OrgOldAddress(slug=old, org_id=org.id, expires_at=utcnow() + OLD_ADDRESS_REDIRECT_FOR)
    )
    session.flush()
    audit_record(
        session=session,
        action="org.slug_changed",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="organization",
        target_id=org_id,
        details={"from": old, "to": slug},
    )
    return org


def org_change_slug_check(*, session: Session, org: Organization, slug: str) -> str:
    """The cleaned new address if `org` may move there (asked before the confirmation).

    Raises:
        ValidationFailed: slug_invalid, slug_reserved. Conflict: slug_taken.
    """
    slug = slug_validate(slug)
    if slug != org.slug and _slug_taken(session, slug, org_id=org.id):
        raise _slug_taken_error(slug)
    return slug


def org_by_old_address(*, session: Session, slug: str) -> Organization | None:
    """The organization that used to live at `slug`, while its redirect lasts (else None)."""
    old = session.exec(
        select(OrgOldAddress).where(OrgOldAddress.slug == (slug or "").strip().lower())
    ).first()
    if old is None or (old.expires_at is not None and as_utc(old.expires_at) <= utcnow()):
        return None
    org = session.get(Organization, old.org_id)
    return org if org is not None and org.deleted_at is None else None


def org_delete(*, session: Session, actor: User, org_id: int, confirm_slug: str) -> Organization:
    """Soft-delete the org after the owner typed its slug; pending invites are revoked.

    Raises:
        ValidationFailed: code "confirmation_mismatch" when the typed text is not the slug.
    """
    _require(session, actor, org_id, Action.org_delete)
    org = _org_get(session, org_id)
    if (confirm_slug or "").strip() != org.slug:
        raise error_with_code(
            Code.confirmation_mismatch,
            f"To delete this organization, type its address exactly: {org.slug}",
            base=ValidationFailed,
            field="confirm_slug",
        )
    now = utcnow()
    org.deleted_at = now
    session.add(org)
    for invite in session.exec(
        select(Invite).where(Invite.org_id == org_id, Invite.status == InviteStatus.pending.value)
    ):
        invite.status = InviteStatus.revoked.value
        invite.revoked_at = now
        session.add(invite)
    session.flush()
    audit_record(
        session=session,
        action="org.deleted",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="organization",
        target_id=org_id,
        details={"slug": org.slug},
    )
    return org


# Built once: every page open reads the person's organizations (the switcher).
_ORGS_FOR_USER = (
    select(Organization, Membership)
    .join(Membership, col(Membership.org_id) == col(Organization.id))
    .where(col(Membership.user_id) == bindparam("user_id"), col(Organization.deleted_at).is_(None))
    .order_by(func.lower(Organization.name), col(Organization.id))
)


def orgs_for_user(*, session: Session, user_id: int) -> list[tuple[Organization, Membership]]:
    """The user's organizations (not deleted) with their membership, by name."""
    rows = session.exec(_ORGS_FOR_USER, params={"user_id": user_id})
    return [(org, membership) for org, membership in rows]


def _org_not_found(slug: str) -> NotFound:
    return error_with_code(
        Code.org_not_found,
        f"There is no organization at {slug!r}. It may have been renamed or deleted; "
        "pick one from the switcher.",
        base=NotFound,
    )


def org_by_slug(*, session: Session, slug: str) -> Organization:
    org = session.exec(
        select(Organization).where(Organization.slug == (slug or "").strip().lower())
    ).first()
    if org is None or org.deleted_at is not None:
        raise _org_not_found(slug)
    return org


# An organization by address and one person's membership in it, as plain columns (prebuilt).
_ORG_AND_MEMBERSHIP = (
    select(*db.loaded_columns(Organization, Membership))
    .outerjoin(
        Membership,
        (col(Membership.org_id) == col(Organization.id))
        & (col(Membership.user_id) == bindparam("user_id")),
    )
    .where(col(Organization.slug) == bindparam("slug"))
    .limit(1)
)


def org_and_membership(
    *, session: Session, slug: str, user_id: int
) -> tuple[Organization, Membership | None]:
    """The organization at `slug` and `user_id`'s membership in it (None: not a member), in one
    statement. Raises like `org_by_slug`."""
    row = session.execute(
        _ORG_AND_MEMBERSHIP, {"slug": (slug or "").strip().lower(), "user_id": user_id}
    ).first()
    if row is None:
        raise _org_not_found(slug)
    org, membership = db.attach_row(session, (Organization, Membership), row)
    if org.deleted_at is not None:
        raise _org_not_found(slug)
    return org, membership


# --- projects ------------------------------------------------------------------------------


def _project_get(session: Session, org_id: int, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None or project.org_id != org_id:
        raise error_with_code(
            Code.project_not_found,
            "This project does not exist or you do not have access to it.",
            base=NotFound,
        )
    return project


def _project_name_free(session: Session, org_id: int, name: str, exclude_id: int | None) -> None:
    query = select(Project).where(
        Project.org_id == org_id, func.lower(Project.name) == name.lower()
    )
    if exclude_id is not None:
        query = query.where(Project.id != exclude_id)
    clash = session.exec(query).first()
    if clash is not None:
        where = " (archived)" if clash.archived_at is not None else ""
        raise error_with_code(
            Code.project_name_taken,
            f"A project named {clash.name!r}{where} already exists in this organization. "
            "Choose another name.",
            base=Conflict,
            field="name",
        )


def project_create(*, session: Session, actor: User, org_id: int, name: str) -> Project:
    """Create a project. Raises PlanLimitReached (limit "projects": non-archived count)."""
    _require(session, actor, org_id, Action.project_manage)
    name = _clean_name(name, what="project")
    projects_check(session=session, org_id=org_id)
    _project_name_free(session, org_id, name, exclude_id=None)
    project = Project(org_id=org_id, name=name)
    session.add(project)
    session.flush()
    audit_record(
        session=session,
        action="project.created",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="project",
        target_id=project.id,
        details={"name": name},
    )
    return project


def project_rename(
    *, session: Session, actor: User, org_id: int, project_id: int, name: str
) -> Project:
    _require(session, actor, org_id, Action.project_manage, project_id)
    project = _project_get(session, org_id, project_id)
    name = _clean_name(name, what="project")
    _project_name_free(session, org_id, name, exclude_id=project.id)
    old = project.name
    project.name = name
    session.add(project)
    session.flush()
    audit_record(
        session=session,
        action="project.renamed",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="project",
        target_id=project.id,
        details={"from": old, "to": name},
    )
    return project


def project_archive(*, session: Session, actor: User, org_id: int, project_id: int) -> Project:
    """Archive a project (idempotent). Its assets stay readable; it no longer counts to the limit."""
    _require(session, actor, org_id, Action.project_manage, project_id)
    project = _project_get(session, org_id, project_id)
    if project.archived_at is not None:
        return project
    project.archived_at = utcnow()
    session.add(project)
    session.flush()
    audit_record(
        session=session,
        action="project.archived",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="project",
        target_id=project.id,
        details={"name": project.name},
    )
    return project


def project_restore(*, session: Session, actor: User, org_id: int, project_id: int) -> Project:
    """Un-archive a project (idempotent); it counts to the project limit again."""
    _require(session, actor, org_id, Action.project_manage, project_id)
    project = _project_get(session, org_id, project_id)
    if project.archived_at is None:
        return project
    projects_check(session=session, org_id=org_id)
    project.archived_at = None
    session.add(project)
    session.flush()
    audit_record(
        session=session,
        action="project.restored",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="project",
        target_id=project.id,
        details={"name": project.name},
    )
    return project


def projects_visible(
    *, session: Session, actor: Actor, org_id: int, include_archived: bool = False
) -> list[Project]:
    """Projects the actor may see, by name; a project-scoped editor sees only approved ones."""
    policy.require(actor, Action.project_view, policy.Target(org_id=org_id))
    scoped = actor.project_scoped and actor.role is not None and not actor.is_operator
    if scoped and not actor.project_ids:
        return []
    params = {"org_id": org_id, "project_ids": sorted(actor.project_ids) if scoped else []}
    return list(session.exec(_projects_statement(include_archived, scoped), params=params))


@functools.lru_cache(maxsize=4)
def _projects_statement(include_archived: bool, scoped: bool) -> Any:
    """The projects of an organization by name, built once per shape (the values are bound)."""
    query = select(Project).where(Project.org_id == bindparam("org_id"))
    if not include_archived:
        query = query.where(col(Project.archived_at).is_(None))
    if scoped:
        query = query.where(col(Project.id).in_(bindparam("project_ids", expanding=True)))
    return query.order_by(func.lower(Project.name), Project.id)


# --- team --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamMember:
    user_id: int
    name: str
    email: str
    role: str
    project_scoped: bool
    project_names: tuple[str, ...]
    last_active_at: datetime | None


def _admin_cannot_touch_owner(actor_membership_role: OrgRole | None, target_role: str) -> None:
    if target_role == OrgRole.owner.value and actor_membership_role != OrgRole.owner:
        raise error_with_code(
            Code.role_forbidden,
            "Only an owner can change or remove another owner. Ask an owner to do it.",
            base=PermissionDenied,
        )


def _last_owner_error(org: Organization, doing: str) -> Conflict:
    return error_with_code(
        Code.last_owner,
        f"{org.name} needs at least one owner, so you cannot {doing}. "
        "Transfer ownership to another member in Team first, or delete the organization.",
        base=Conflict,
    )


def membership_add(
    *,
    session: Session,
    org_id: int,
    user_id: int,
    role: OrgRole | str,
    project_ids: list[int] | None = None,
    actor_user_id: int | None = None,
) -> Membership:
    """Add a member. Non-empty `project_ids` make a project-scoped editor.

    When `actor_user_id` is given, that user must be allowed team_manage (and only an owner
    may add an owner); without it the call is trusted (dev seed, invite acceptance).

    Raises:
        PlanLimitReached: limit "seats" (members + pending invites would exceed max_seats).
        Conflict: code "already_member".
        ValidationFailed: project list given for a non-editor, or unknown projects.
    """
    role = _role(role)
    org = _org_get(session, org_id)
    if actor_user_id is not None:
        acting_user = session.get(User, actor_user_id)
        if acting_user is None:
            raise PermissionDenied("The acting user no longer exists. Sign in again.")
        actor = _require(session, acting_user, org_id, Action.team_manage)
        _admin_cannot_touch_owner(actor.role, role.value)
    user = session.get(User, user_id)
    if user is None:
        raise error_with_code(
            Code.user_not_found,
            "That user does not exist. Invite them by email instead.",
            base=NotFound,
        )
    if _membership_get(session, org_id, user_id) is not None:
        raise error_with_code(
            Code.already_member,
            f"{user.email} is already a member of {org.name}.",
            base=Conflict,
        )
    ids = _validated_project_ids(session, org_id, role, project_ids)
    seats_check(session=session, org_id=org_id)
    membership = Membership(org_id=org_id, user_id=user_id, role=role.value)
    session.add(membership)
    session.flush()
    if ids:
        _set_project_access(session, membership, ids)
    audit_record(
        session=session,
        action="member.added",
        actor_user_id=actor_user_id,
        org_id=org_id,
        target_type="membership",
        target_id=membership.id,
        details={"user_id": user_id, "role": role.value, "project_ids": ids},
    )
    return membership


def member_change_role(
    *,
    session: Session,
    actor: User,
    org_id: int,
    user_id: int,
    role: OrgRole | str,
    project_ids: list[int] | None = None,
) -> Membership:
    """Change a member's role (and, for editors, their project list; empty = all projects).

    Admins cannot change owners nor make anyone an owner; the last owner cannot be demoted.
    """
    acting = _require(session, actor, org_id, Action.team_manage)
    org = _org_get(session, org_id)
    role = _role(role)
    membership = _member_required(session, org_id, user_id)
    _admin_cannot_touch_owner(acting.role, membership.role)
    _admin_cannot_touch_owner(acting.role, role.value)
    if (
        membership.role == OrgRole.owner.value
        and role != OrgRole.owner
        and _count_owners(session, org_id) <= 1
    ):
        raise _last_owner_error(org, "change the role of its only owner")
    ids = _validated_project_ids(session, org_id, role, project_ids)
    before = {"role": membership.role, "project_scoped": membership.project_scoped}
    membership.role = role.value
    session.add(membership)
    _set_project_access(session, membership, ids)
    audit_record(
        session=session,
        action="member.role_changed",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="membership",
        target_id=membership.id,
        details={
            "user_id": user_id,
            "from": before,
            "to": {"role": role.value, "project_ids": ids},
        },
    )
    return membership


def _membership_delete(session: Session, membership: Membership) -> None:
    accesses = session.exec(
        select(ProjectAccess).where(ProjectAccess.membership_id == membership.id)
    ).all()
    for access in accesses:
        session.delete(access)
    if accesses:  # the rows that point at the membership go first, not by the database's cascade
        session.flush()
    session.delete(membership)
    session.flush()


def member_remove(*, session: Session, actor: User, org_id: int, user_id: int) -> None:
    """Remove another member. Admins cannot remove owners; use member_leave for yourself."""
    acting = _require(session, actor, org_id, Action.team_manage)
    org = _org_get(session, org_id)
    if user_id == actor.id:
        raise error_with_code(
            Code.use_leave,
            "To remove yourself, use Leave organization in Team.",
            base=ValidationFailed,
        )
    membership = _member_required(session, org_id, user_id)
    _admin_cannot_touch_owner(acting.role, membership.role)
    if membership.role == OrgRole.owner.value and _count_owners(session, org_id) <= 1:
        raise _last_owner_error(org, "remove its only owner")
    membership_id, role = membership.id, membership.role
    _membership_delete(session, membership)
    audit_record(
        session=session,
        action="member.removed",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="membership",
        target_id=membership_id,
        details={"user_id": user_id, "role": role},
    )


def member_leave(*, session: Session, actor: User, org_id: int) -> None:
    """Leave an organization. The last owner must transfer ownership first."""
    org = _org_get(session, org_id)
    membership = _membership_get(session, org_id, actor.id)
    if membership is None:
        raise error_with_code(
            Code.not_a_member, f"You are not a member of {org.name}.", base=NotFound
        )
    if membership.role == OrgRole.owner.value and _count_owners(session, org_id) <= 1:
        raise error_with_code(
            Code.last_owner,
            f"You are the only owner of {org.name}, so you cannot leave it yet. "
            "Transfer ownership to another member in Team first, or delete the organization.",
            base=Conflict,
        )
    membership_id, role = membership.id, membership.role
    _membership_delete(session, membership)
    audit_record(
        session=session,
        action="member.left",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="membership",
        target_id=membership_id,
        details={"user_id": actor.id, "role": role},
    )


def ownership_transfer(
    *, session: Session, actor: User, org_id: int, new_owner_user_id: int
) -> Membership:
    """Make another member the owner; the acting owner becomes an admin. Returns the new owner's membership."""
    _require(session, actor, org_id, Action.ownership_transfer)
    _org_get(session, org_id)
    if new_owner_user_id == actor.id:
        raise error_with_code(
            Code.ownership_self,
            "You already own this organization. Choose another member.",
            base=ValidationFailed,
        )
    new_membership = _member_required(session, org_id, new_owner_user_id)
    old_membership = _member_required(session, org_id, actor.id)
    before_role = new_membership.role
    new_membership.role = OrgRole.owner.value
    _set_project_access(session, new_membership, [])
    old_membership.role = OrgRole.admin.value
    session.add(new_membership)
    session.add(old_membership)
    session.flush()
    audit_record(
        session=session,
        action="org.ownership_transferred",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="membership",
        target_id=new_membership.id,
        details={
            "from_user_id": actor.id,
            "to_user_id": new_owner_user_id,
            "to_previous_role": before_role,
        },
    )
    return new_membership


def ownership_transfer_confirmed(
    *,
    session: Session,
    actor: User,
    org_id: int,
    new_owner_user_id: int,
    password: str,
    totp_code: str = "",
) -> Membership:
    """`ownership_transfer` after the owner re-entered the password (and a 2FA code when on).

    A wrong password counts toward the sign-in lockout, so a stolen session cannot give the
    organization away by guessing.

    Raises:
        PermissionDenied: invalid_credentials (password), totp_required / totp_invalid.
    """
    from services.lockout import password_reconfirm
    from services.totp import totp_verify

    _require(session, actor, org_id, Action.ownership_transfer)
    if not actor.password_hash:
        raise error_with_code(
            Code.invalid_credentials,
            "Transferring ownership needs your account password, and your account has none yet. "
            "Set one with 'Forgot password' on the sign-in page, then try again.",
            base=PermissionDenied,
            field="password",
        )
    password_reconfirm(
        session=session,
        user=actor,
        password=password or "",
        wrong_message="That password is not correct, so ownership was not transferred. "
        "Enter your current account password.",
    )
    if actor.totp_enabled_at is not None:
        if not (totp_code or "").strip():
            raise error_with_code(
                Code.totp_required,
                "Enter the 6-digit code from your authenticator app (or a recovery code) to "
                "transfer ownership.",
                base=PermissionDenied,
                field="totp_code",
            )
        if not totp_verify(session=session, user=actor, code=totp_code):
            raise error_with_code(
                Code.totp_invalid,
                "That code is not right or was already used, so ownership was not transferred. "
                "Enter the current code from your authenticator app.",
                base=PermissionDenied,
                field="totp_code",
            )
    return ownership_transfer(
        session=session, actor=actor, org_id=org_id, new_owner_user_id=new_owner_user_id
    )


# Built once: Studio's person filter and the Team page read it on every open.
_TEAM = (
    select(Membership, User)
    .join(User, col(User.id) == col(Membership.user_id))
    .where(col(Membership.org_id) == bindparam("org_id"))
)


def team_list(*, session: Session, org_id: int) -> list[TeamMember]:
    """Members by role (owners first) then name. The caller checks Action.team_view."""
    rows = list(session.exec(_TEAM, params={"org_id": org_id}))
    scoped_ids = [membership.id for membership, _ in rows if membership.project_scoped]
    names: dict[int, list[str]] = {}
    if scoped_ids:
        for membership_id, project_name in session.exec(
            select(ProjectAccess.membership_id, Project.name)
            .join(Project, Project.id == ProjectAccess.project_id)
            .where(col(ProjectAccess.membership_id).in_(scoped_ids))
            .order_by(Project.name)
        ):
            names.setdefault(membership_id, []).append(project_name)
    members = [
        TeamMember(
            user_id=user.id,
            name=user.name or user.email,
            email=user.email,
            role=membership.role,
            project_scoped=membership.project_scoped,
            project_names=tuple(names.get(membership.id, [])),
            last_active_at=membership.last_active_at or user.last_active_at,
        )
        for membership, user in rows
    ]
    members.sort(key=lambda m: (_ROLE_ORDER.get(OrgRole(m.role), 9), m.name.lower(), m.user_id))
    return members


def org_admin_names(*, session: Session, org_id: int) -> list[str]:
    """Names (or emails) of the org's owners then admins: who can reissue invites, etc."""
    rows = session.exec(
        select(Membership.role, User.name, User.email)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.org_id == org_id,
            col(Membership.role).in_([OrgRole.owner.value, OrgRole.admin.value]),
        )
    )
    people = sorted(rows, key=lambda r: (_ROLE_ORDER[OrgRole(r[0])], (r[1] or r[2]).lower()))
    return [name or email for _, name, email in people]
