"""Organizations, projects and team: services/orgs.py rules and guardrails at their boundaries."""

from __future__ import annotations

import pytest
from sqlmodel import select

from models import (
    AuditLogEntry,
    CreditAccount,
    Invite,
    Membership,
    Organization,
    ProjectAccess,
    Subscription,
    User,
)
from models.enums import OrgRole
from services import orgs
from services.errors import Conflict, NotFound, PermissionDenied, PlanLimitReached, ValidationFailed
from services.invites import invite_create
from services.policy import Action, actor_for
from tests.factories import add_member, make_user

BASE_URL = "http://testserver"


def audit_actions(session, org_id: int) -> list[str]:
    return [
        entry.action
        for entry in session.exec(
            select(AuditLogEntry).where(AuditLogEntry.org_id == org_id).order_by(AuditLogEntry.id)
        )
    ]


@pytest.fixture
def owner(session) -> User:
    return make_user(session, "olivia@example.com", "Olivia Owner")


@pytest.fixture
def org(session, owner) -> Organization:
    return orgs.org_create(session=session, owner=owner, name="Acme Marketing")


def set_plan(session, org, plan_key: str) -> None:
    org.plan_key = plan_key
    subscription = session.exec(select(Subscription).where(Subscription.org_id == org.id)).one()
    subscription.plan_key = plan_key
    session.add_all([org, subscription])
    session.flush()


# --- slugs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Acme Marketing", "acme-marketing"),
        ("  Café  Ünïcorn!! ", "cafe-unicorn"),
        ("R&D / Growth -- Team", "r-d-growth-team"),
        ("x" * 60, "x" * 48),
        ("日本", ""),
    ],
)
def test_slugify_org_name(name, slug):
    assert orgs.slugify_org_name(name) == slug


def test_org_create_makes_owner_subscription_credit_account_and_audit(session, owner, org):
    assert org.slug == "acme-marketing"
    assert org.name == "Acme Marketing"
    assert org.created_by_user_id == owner.id
    membership = session.exec(select(Membership).where(Membership.org_id == org.id)).one()
    assert (membership.user_id, membership.role) == (owner.id, "owner")
    subscription = session.exec(select(Subscription).where(Subscription.org_id == org.id)).one()
    assert (subscription.status, subscription.plan_key) == ("active", "free")
    account = session.exec(select(CreditAccount).where(CreditAccount.org_id == org.id)).one()
    assert account.balance_millicredits == 50_000  # Free: the first monthly credits at once
    assert audit_actions(session, org.id) == ["org.created"]


def test_org_create_derives_unique_slugs_on_clash(session):
    slugs = []
    for index in range(3):
        user = make_user(session, f"u{index}@example.com")
        slugs.append(orgs.org_create(session=session, owner=user, name="Acme").slug)
    assert slugs == ["acme", "acme-2", "acme-3"]


def test_org_create_pads_short_and_reserved_names(session):
    first = orgs.org_create(session=session, owner=make_user(session, "a@example.com"), name="A")
    second = orgs.org_create(
        session=session, owner=make_user(session, "b@example.com"), name="Billing"
    )
    third = orgs.org_create(session=session, owner=make_user(session, "c@example.com"), name="日本")
    assert (first.slug, second.slug, third.slug) == ("a-team", "billing-team", "organization")


@pytest.mark.parametrize(
    ("slug", "code"),
    [
        ("ab", "slug_invalid"),
        ("x" * 49, "slug_invalid"),
        ("-acme", "slug_invalid"),
        ("acme-", "slug_invalid"),
        ("acme corp", "slug_invalid"),
        ("acme_corp", "slug_invalid"),
        ("billing", "slug_reserved"),
        ("api", "slug_reserved"),
    ],
)
def test_org_create_rejects_bad_explicit_slugs(session, owner, slug, code):
    with pytest.raises(ValidationFailed) as caught:
        orgs.org_create(session=session, owner=owner, name="Acme", slug=slug)
    assert caught.value.code == code
    assert caught.value.field == "slug"


@pytest.mark.parametrize("slug", ["abc", "x" * 48, "acme-2024"])
def test_org_create_accepts_slug_at_length_bounds(session, owner, slug):
    assert orgs.org_create(session=session, owner=owner, name="Acme", slug=slug).slug == slug


def test_explicit_slug_taken_even_by_a_deleted_org(session, owner, org):
    orgs.org_delete(session=session, actor=owner, org_id=org.id, confirm_slug=org.slug)
    other = make_user(session, "other@example.com")
    with pytest.raises(Conflict) as caught:
        orgs.org_create(session=session, owner=other, name="Acme", slug="acme-marketing")
    assert caught.value.code == "slug_taken"
    # Derived slugs step past it.
    assert orgs.org_create(session=session, owner=other, name="Acme Marketing").slug == (
        "acme-marketing-2"
    )


def test_org_create_requires_a_name(session, owner):
    with pytest.raises(ValidationFailed):
        orgs.org_create(session=session, owner=owner, name="   ")


# --- orgs owned guardrail ----------------------------------------------------------------------


def test_orgs_owned_free_plan_boundary(session, owner, org):
    # Free allows 1: the first (N-1 = 0 owned) was created by the fixture; the second is refused.
    with pytest.raises(PlanLimitReached) as caught:
        orgs.org_create(session=session, owner=owner, name="Second")
    error = caught.value
    assert (error.limit, error.used, error.allowed, error.plan) == ("orgs_owned", 1, 1, "free")
    assert error.message == (
        "Organization limit reached (1 of 1 on Free). Upgrade in Billing to own more organizations."
    )
    assert error.code == "plan_limit_reached"


def test_orgs_owned_uses_the_best_plan_among_owned_orgs(session, owner, org):
    set_plan(session, org, "starter")  # Starter allows 2
    second = orgs.org_create(session=session, owner=owner, name="Second")
    assert second.id is not None
    with pytest.raises(PlanLimitReached) as caught:
        orgs.org_create(session=session, owner=owner, name="Third")
    assert (caught.value.used, caught.value.allowed, caught.value.plan) == (2, 2, "starter")
    assert "(2 of 2 on Starter)" in caught.value.message


def test_orgs_joined_do_not_count_and_deleted_orgs_free_the_slot(session, owner, org):
    other = make_user(session, "other@example.com")
    other_org = orgs.org_create(session=session, owner=other, name="Other")
    orgs.membership_add(session=session, org_id=other_org.id, user_id=owner.id, role="admin")
    orgs.org_delete(session=session, actor=owner, org_id=org.id, confirm_slug=org.slug)
    assert orgs.org_create(session=session, owner=owner, name="Fresh start").id is not None


# --- org management ------------------------------------------------------------------------------


def test_org_rename_by_admin_and_refused_to_editor(session, owner, org):
    set_plan(session, org, "starter")
    admin = add_member(session, org, "admin@example.com", "admin")
    editor = add_member(session, org, "editor@example.com", "editor")
    orgs.org_rename(session=session, actor=admin, org_id=org.id, name="  Acme   Global ")
    assert org.name == "Acme Global"
    with pytest.raises(PermissionDenied) as caught:
        orgs.org_rename(session=session, actor=editor, org_id=org.id, name="Nope")
    assert caught.value.code == "role_forbidden"
    assert "org.renamed" in audit_actions(session, org.id)


def test_org_change_slug(session, owner, org):
    taken = orgs.org_create(session=session, owner=make_user(session, "b@example.com"), name="Beta")
    with pytest.raises(Conflict) as caught:
        orgs.org_change_slug(session=session, actor=owner, org_id=org.id, slug=taken.slug)
    assert caught.value.code == "slug_taken"
    with pytest.raises(ValidationFailed):
        orgs.org_change_slug(session=session, actor=owner, org_id=org.id, slug="No Spaces")
    orgs.org_change_slug(session=session, actor=owner, org_id=org.id, slug="acme-new")
    assert orgs.org_by_slug(session=session, slug="acme-new").id == org.id
    with pytest.raises(NotFound):
        orgs.org_by_slug(session=session, slug="acme-marketing")
    assert "org.slug_changed" in audit_actions(session, org.id)


def test_non_member_cannot_manage(session, org):
    stranger = make_user(session, "stranger@example.com")
    with pytest.raises(PermissionDenied) as caught:
        orgs.org_rename(session=session, actor=stranger, org_id=org.id, name="Mine")
    assert caught.value.code == "not_a_member"


def test_org_delete_needs_owner_and_typed_slug(session, owner, org):
    set_plan(session, org, "starter")
    admin = add_member(session, org, "admin@example.com", "admin")
    invite, _ = invite_create(
        session=session, actor=owner, org_id=org.id, email="x@example.com", role="viewer",
        base_url=BASE_URL,
    )  # fmt: skip
    with pytest.raises(PermissionDenied):
        orgs.org_delete(session=session, actor=admin, org_id=org.id, confirm_slug=org.slug)
    with pytest.raises(ValidationFailed) as caught:
        orgs.org_delete(session=session, actor=owner, org_id=org.id, confirm_slug="Acme Marketing")
    assert caught.value.code == "confirmation_mismatch"
    assert "acme-marketing" in caught.value.message
    orgs.org_delete(session=session, actor=owner, org_id=org.id, confirm_slug="acme-marketing")
    assert org.deleted_at is not None
    assert invite.status == "revoked"
    with pytest.raises(NotFound):
        orgs.org_by_slug(session=session, slug="acme-marketing")
    assert orgs.orgs_for_user(session=session, user_id=owner.id) == []
    # Every later action on the deleted org is refused as not found.
    with pytest.raises(NotFound):
        orgs.org_rename(session=session, actor=owner, org_id=org.id, name="Back")
    assert "org.deleted" in audit_actions(session, org.id)


def test_orgs_for_user_lists_memberships_by_name(session, owner, org):
    other = make_user(session, "z@example.com")
    beta = orgs.org_create(session=session, owner=other, name="beta")
    orgs.membership_add(session=session, org_id=beta.id, user_id=owner.id, role="viewer")
    rows = orgs.orgs_for_user(session=session, user_id=owner.id)
    assert [(o.name, m.role) for o, m in rows] == [("Acme Marketing", "owner"), ("beta", "viewer")]


# --- projects ------------------------------------------------------------------------------------


def test_project_guardrail_boundary_on_free(session, owner, org):
    # Free allows 2 active projects: the 2nd is allowed, the 3rd refused.
    orgs.project_create(session=session, actor=owner, org_id=org.id, name="One")
    second = orgs.project_create(session=session, actor=owner, org_id=org.id, name="Two")
    with pytest.raises(PlanLimitReached) as caught:
        orgs.project_create(session=session, actor=owner, org_id=org.id, name="Three")
    error = caught.value
    assert (error.limit, error.used, error.allowed, error.plan) == ("projects", 2, 2, "free")
    assert error.message.startswith(
        "Project limit reached (2 of 2 on Free). Upgrade in Billing to add more projects"
    )
    # Archived projects do not count.
    orgs.project_archive(session=session, actor=owner, org_id=org.id, project_id=second.id)
    orgs.project_create(session=session, actor=owner, org_id=org.id, name="Three")
    # ...but restoring one needs room again.
    with pytest.raises(PlanLimitReached):
        orgs.project_restore(session=session, actor=owner, org_id=org.id, project_id=second.id)
    assert orgs.plan_usage(session=session, org_id=org.id)["projects"] == {"used": 2, "allowed": 2}


def test_project_names_unique_per_org_case_insensitive(session, owner, org):
    orgs.project_create(session=session, actor=owner, org_id=org.id, name="Launch")
    with pytest.raises(Conflict) as caught:
        orgs.project_create(session=session, actor=owner, org_id=org.id, name="launch")
    assert caught.value.code == "project_name_taken"


def test_project_manage_roles_and_audit(session, owner, org):
    admin = add_member(session, org, "admin@example.com", "admin")
    project = orgs.project_create(session=session, actor=admin, org_id=org.id, name="Launch")
    orgs.project_rename(
        session=session, actor=admin, org_id=org.id, project_id=project.id, name="Relaunch"
    )
    assert project.name == "Relaunch"
    set_plan(session, org, "starter")
    editor = add_member(session, org, "editor@example.com", "editor")
    with pytest.raises(PermissionDenied):
        orgs.project_create(session=session, actor=editor, org_id=org.id, name="Mine")
    orgs.project_archive(session=session, actor=owner, org_id=org.id, project_id=project.id)
    orgs.project_archive(session=session, actor=owner, org_id=org.id, project_id=project.id)
    actions = audit_actions(session, org.id)
    assert actions.count("project.archived") == 1
    assert {"project.created", "project.renamed"} <= set(actions)


def test_project_of_another_org_is_not_found(session, owner, org):
    other_owner = make_user(session, "b@example.com")
    beta = orgs.org_create(session=session, owner=other_owner, name="Beta")
    theirs = orgs.project_create(session=session, actor=other_owner, org_id=beta.id, name="X")
    with pytest.raises(NotFound):
        orgs.project_rename(
            session=session, actor=owner, org_id=org.id, project_id=theirs.id, name="Y"
        )


def test_projects_visible_for_scoped_editor(session, owner, org):
    set_plan(session, org, "starter")
    launch = orgs.project_create(session=session, actor=owner, org_id=org.id, name="Launch")
    orgs.project_create(session=session, actor=owner, org_id=org.id, name="Secret")
    scoped = add_member(session, org, "scoped@example.com", "editor", project_ids=[launch.id])
    scoped_actor = actor_for(session=session, user=scoped, org_id=org.id)
    visible = orgs.projects_visible(session=session, actor=scoped_actor, org_id=org.id)
    assert [p.name for p in visible] == ["Launch"]
    owner_actor = actor_for(session=session, user=owner, org_id=org.id)
    assert [
        p.name for p in orgs.projects_visible(session=session, actor=owner_actor, org_id=org.id)
    ] == [
        "Launch",
        "Secret",
    ]
    stranger = actor_for(session=session, user=make_user(session, "s@example.com"), org_id=org.id)
    with pytest.raises(PermissionDenied):
        orgs.projects_visible(session=session, actor=stranger, org_id=org.id)


# --- membership and seats -----------------------------------------------------------------------


def test_seat_guardrail_boundary_on_free(session, owner, org):
    # Free: 2 seats. Owner + 1 member fits (N-1 -> N); the next is refused.
    add_member(session, org, "second@example.com", "editor")
    third = make_user(session, "third@example.com")
    with pytest.raises(PlanLimitReached) as caught:
        orgs.membership_add(session=session, org_id=org.id, user_id=third.id, role="viewer")
    error = caught.value
    assert (error.limit, error.used, error.allowed, error.plan) == ("seats", 2, 2, "free")
    assert error.message == (
        "Seat limit reached (2 of 2 on Free). Upgrade in Billing to add more members."
    )


def test_seat_guardrail_message_on_starter(session, owner, org):
    set_plan(session, org, "starter")
    for index in range(4):
        add_member(session, org, f"m{index}@example.com", "viewer")
    extra = make_user(session, "extra@example.com")
    with pytest.raises(PlanLimitReached) as caught:
        orgs.membership_add(session=session, org_id=org.id, user_id=extra.id, role="viewer")
    assert caught.value.message == (
        "Seat limit reached (5 of 5 on Starter). Upgrade in Billing to add more members."
    )


def test_pending_invites_hold_seats(session, owner, org):
    invite_create(
        session=session, actor=owner, org_id=org.id, email="p@example.com", role="viewer",
        base_url=BASE_URL,
    )  # fmt: skip
    user = make_user(session, "direct@example.com")
    with pytest.raises(PlanLimitReached) as caught:
        orgs.membership_add(session=session, org_id=org.id, user_id=user.id, role="viewer")
    assert caught.value.used == 2
    usage = orgs.plan_usage(session=session, org_id=org.id)
    assert usage == {
        "plan": {"key": "free", "name": "Free"},
        "members": 1,
        "seats": {"used": 2, "allowed": 2},
        "projects": {"used": 0, "allowed": 2},
        "pending_invites": {"used": 1, "allowed": 2},
    }


def test_membership_add_rules(session, owner, org):
    set_plan(session, org, "starter")
    project = orgs.project_create(session=session, actor=owner, org_id=org.id, name="Launch")
    scoped = add_member(session, org, "scoped@example.com", "editor", project_ids=[project.id])
    membership = session.exec(select(Membership).where(Membership.user_id == scoped.id)).one()
    assert membership.project_scoped is True
    access = session.exec(
        select(ProjectAccess).where(ProjectAccess.membership_id == membership.id)
    ).all()
    assert [a.project_id for a in access] == [project.id]

    with pytest.raises(Conflict) as caught:
        orgs.membership_add(session=session, org_id=org.id, user_id=scoped.id, role="viewer")
    assert caught.value.code == "already_member"
    assert "scoped@example.com" in caught.value.message

    viewer = make_user(session, "viewer@example.com")
    with pytest.raises(ValidationFailed):
        orgs.membership_add(
            session=session, org_id=org.id, user_id=viewer.id, role="viewer",
            project_ids=[project.id],
        )  # fmt: skip
    with pytest.raises(ValidationFailed):
        orgs.membership_add(
            session=session, org_id=org.id, user_id=viewer.id, role="editor", project_ids=[9999]
        )
    with pytest.raises(ValidationFailed):
        orgs.membership_add(session=session, org_id=org.id, user_id=viewer.id, role="boss")


def test_membership_add_with_actor_checks_permission(session, owner, org):
    set_plan(session, org, "starter")
    admin = add_member(session, org, "admin@example.com", "admin")
    editor = add_member(session, org, "editor@example.com", "editor")
    newcomer = make_user(session, "new@example.com")
    with pytest.raises(PermissionDenied):
        orgs.membership_add(
            session=session, org_id=org.id, user_id=newcomer.id, role="viewer",
            actor_user_id=editor.id,
        )  # fmt: skip
    with pytest.raises(PermissionDenied):
        orgs.membership_add(
            session=session, org_id=org.id, user_id=newcomer.id, role="owner",
            actor_user_id=admin.id,
        )  # fmt: skip
    orgs.membership_add(
        session=session, org_id=org.id, user_id=newcomer.id, role="viewer", actor_user_id=admin.id
    )
    entry = session.exec(
        select(AuditLogEntry)
        .where(AuditLogEntry.action == "member.added")
        .order_by(AuditLogEntry.id.desc())
    ).first()
    assert entry.actor_user_id == admin.id


# --- roles, removal, leaving, ownership ----------------------------------------------------------


@pytest.fixture
def team(session, owner, org):
    set_plan(session, org, "starter")
    return {
        "owner": owner,
        "admin": add_member(session, org, "admin@example.com", "admin"),
        "editor": add_member(session, org, "editor@example.com", "editor"),
        "viewer": add_member(session, org, "viewer@example.com", "viewer"),
    }


def _role_of(session, org, user) -> str:
    return session.exec(
        select(Membership.role).where(Membership.org_id == org.id, Membership.user_id == user.id)
    ).one()


def test_member_change_role(session, org, team):
    orgs.member_change_role(
        session=session,
        actor=team["admin"],
        org_id=org.id,
        user_id=team["viewer"].id,
        role="editor",
    )
    assert _role_of(session, org, team["viewer"]) == "editor"
    entry = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "member.role_changed")
    ).one()
    assert entry.details["from"]["role"] == "viewer"
    assert entry.details["to"]["role"] == "editor"


def test_member_change_role_to_and_from_scoped_editor(session, owner, org, team):
    project = orgs.project_create(session=session, actor=owner, org_id=org.id, name="Launch")
    membership = orgs.member_change_role(
        session=session, actor=owner, org_id=org.id, user_id=team["editor"].id, role="editor",
        project_ids=[project.id],
    )  # fmt: skip
    assert membership.project_scoped is True
    actor = actor_for(session=session, user=team["editor"], org_id=org.id)
    assert actor.project_ids == frozenset({project.id})
    orgs.member_change_role(
        session=session, actor=owner, org_id=org.id, user_id=team["editor"].id, role="editor"
    )
    actor = actor_for(session=session, user=team["editor"], org_id=org.id)
    assert (actor.project_scoped, actor.project_ids) == (False, frozenset())


def test_admin_cannot_touch_owners(session, org, team):
    admin, owner = team["admin"], team["owner"]
    with pytest.raises(PermissionDenied) as caught:
        orgs.member_change_role(
            session=session, actor=admin, org_id=org.id, user_id=owner.id, role="viewer"
        )
    assert caught.value.code == "role_forbidden"
    assert "Only an owner" in caught.value.message
    with pytest.raises(PermissionDenied):
        orgs.member_change_role(
            session=session, actor=admin, org_id=org.id, user_id=team["editor"].id, role="owner"
        )
    with pytest.raises(PermissionDenied):
        orgs.member_remove(session=session, actor=admin, org_id=org.id, user_id=owner.id)


def test_editor_and_viewer_cannot_manage_team(session, org, team):
    for role in ("editor", "viewer"):
        with pytest.raises(PermissionDenied) as caught:
            orgs.member_remove(
                session=session, actor=team[role], org_id=org.id, user_id=team["admin"].id
            )
        assert caught.value.code == "role_forbidden"


def test_last_owner_cannot_be_demoted(session, org, team):
    owner = team["owner"]
    with pytest.raises(Conflict) as caught:
        orgs.member_change_role(
            session=session, actor=owner, org_id=org.id, user_id=owner.id, role="admin"
        )
    assert caught.value.code == "last_owner"
    # With a second owner, demotion works.
    orgs.member_change_role(
        session=session, actor=owner, org_id=org.id, user_id=team["admin"].id, role="owner"
    )
    orgs.member_change_role(
        session=session, actor=owner, org_id=org.id, user_id=owner.id, role="admin"
    )
    assert _role_of(session, org, owner) == "admin"


def test_member_remove(session, org, team):
    orgs.member_remove(
        session=session, actor=team["admin"], org_id=org.id, user_id=team["viewer"].id
    )
    assert (
        session.exec(select(Membership).where(Membership.user_id == team["viewer"].id)).first()
        is None
    )
    with pytest.raises(NotFound):
        orgs.member_remove(
            session=session, actor=team["admin"], org_id=org.id, user_id=team["viewer"].id
        )
    with pytest.raises(ValidationFailed) as caught:
        orgs.member_remove(
            session=session, actor=team["admin"], org_id=org.id, user_id=team["admin"].id
        )
    assert caught.value.code == "use_leave"
    assert "member.removed" in audit_actions(session, org.id)


def test_member_leave_and_last_owner(session, org, team):
    owner = team["owner"]
    with pytest.raises(Conflict) as caught:
        orgs.member_leave(session=session, actor=owner, org_id=org.id)
    assert caught.value.code == "last_owner"
    assert "only owner" in caught.value.message
    assert "Transfer ownership" in caught.value.message
    orgs.member_leave(session=session, actor=team["editor"], org_id=org.id)
    assert orgs.plan_usage(session=session, org_id=org.id)["members"] == 3
    with pytest.raises(NotFound):
        orgs.member_leave(session=session, actor=team["editor"], org_id=org.id)
    assert "member.left" in audit_actions(session, org.id)


def test_ownership_transfer(session, org, team):
    owner, editor = team["owner"], team["editor"]
    with pytest.raises(PermissionDenied):
        orgs.ownership_transfer(
            session=session, actor=team["admin"], org_id=org.id, new_owner_user_id=editor.id
        )
    stranger = make_user(session, "stranger@example.com")
    with pytest.raises(NotFound):
        orgs.ownership_transfer(
            session=session, actor=owner, org_id=org.id, new_owner_user_id=stranger.id
        )
    orgs.ownership_transfer(
        session=session, actor=owner, org_id=org.id, new_owner_user_id=editor.id
    )
    assert _role_of(session, org, editor) == "owner"
    assert _role_of(session, org, owner) == "admin"
    # The former owner can now leave; the new owner cannot (the only owner).
    orgs.member_leave(session=session, actor=owner, org_id=org.id)
    with pytest.raises(Conflict):
        orgs.member_leave(session=session, actor=editor, org_id=org.id)
    assert "org.ownership_transferred" in audit_actions(session, org.id)


def test_team_list(session, owner, org, team):
    project = orgs.project_create(session=session, actor=owner, org_id=org.id, name="Launch")
    scoped = make_user(session, "scoped@example.com", "")
    orgs.membership_add(
        session=session, org_id=org.id, user_id=scoped.id, role="editor", project_ids=[project.id]
    )
    members = orgs.team_list(session=session, org_id=org.id)
    assert [(m.email, m.role) for m in members] == [
        ("olivia@example.com", "owner"),
        ("admin@example.com", "admin"),
        ("editor@example.com", "editor"),
        ("scoped@example.com", "editor"),
        ("viewer@example.com", "viewer"),
    ]
    scoped_row = members[3]
    assert scoped_row.name == "scoped@example.com"  # falls back to email
    assert scoped_row.project_scoped and scoped_row.project_names == ("Launch",)
    assert members[0].name == "Olivia Owner"


def test_audit_trail_for_team_changes(session, owner, org, team):
    actions = audit_actions(session, org.id)
    assert actions[0] == "org.created"
    assert actions.count("member.added") == 3


def test_role_enum_values_round_trip(session, org, team):
    actor = actor_for(session=session, user=team["viewer"], org_id=org.id)
    assert actor.role is OrgRole.viewer
    assert Action.team_manage.value == "team_manage"


def test_pending_invite_rows_untouched_by_membership_changes(session, owner, org):
    invite_create(
        session=session, actor=owner, org_id=org.id, email="p@example.com", role="viewer",
        base_url=BASE_URL,
    )  # fmt: skip
    assert session.exec(select(Invite)).one().status == "pending"
