"""The full access matrix: every role x every action x project scope x subscription state.

Each cell of MATRIX below is one test case. Columns are (project scope : subscription):
  in   = a project the scoped editor is approved for
  out  = another project of the same org (outside the scoped editor's list)
  org  = no project (an org-level target)
  act  = subscription active, exp = subscription expired/unpaid

Cell values:
  ok      allowed
  role    role_forbidden       (member, but the role may not do this)
  member  not_a_member         (not in the org; operators who are not members included)
  404     project_not_found    (out-of-scope project: existence must not leak)
  sub     subscription_inactive (execution locked, reading stays)
  proj    project_required     (a scoped editor must pick one of its projects)
  op      operator_only
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from core.clock import utcnow
from models import Membership, Project, ProjectAccess, Subscription
from models.enums import OrgRole, SubscriptionStatus
from services import policy
from services.errors import NotFound, PermissionDenied
from services.orgs import org_create
from services.policy import Action, Actor, Decision, Target
from tests.factories import make_user

MATRIX = """
                in:act  in:exp  out:act out:exp org:act org:exp
[org_view]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          ok      ok      ok      ok      ok      ok
scoped_editor   ok      ok      ok      ok      ok      ok
viewer          ok      ok      ok      ok      ok      ok
non_member      member  member  member  member  member  member
operator        ok      ok      ok      ok      ok      ok

[project_view]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          ok      ok      ok      ok      ok      ok
scoped_editor   ok      ok      404     404     ok      ok
viewer          ok      ok      ok      ok      ok      ok
non_member      member  member  member  member  member  member
operator        ok      ok      ok      ok      ok      ok

[asset_view]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          ok      ok      ok      ok      ok      ok
scoped_editor   ok      ok      404     404     404     404
viewer          ok      ok      ok      ok      ok      ok
non_member      member  member  member  member  member  member
operator        ok      ok      ok      ok      ok      ok

[tool_run]
owner           ok      sub     ok      sub     ok      sub
admin           ok      sub     ok      sub     ok      sub
editor          ok      sub     ok      sub     ok      sub
scoped_editor   ok      sub     404     404     proj    proj
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[asset_manage]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          ok      ok      ok      ok      ok      ok
scoped_editor   ok      ok      404     404     proj    proj
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[brand_kit_manage]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          ok      ok      ok      ok      ok      ok
scoped_editor   ok      ok      404     404     proj    proj
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[project_manage]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          role    role    role    role    role    role
scoped_editor   role    role    role    role    role    role
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[team_view]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          ok      ok      ok      ok      ok      ok
scoped_editor   ok      ok      ok      ok      ok      ok
viewer          ok      ok      ok      ok      ok      ok
non_member      member  member  member  member  member  member
operator        ok      ok      ok      ok      ok      ok

[team_manage]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          role    role    role    role    role    role
scoped_editor   role    role    role    role    role    role
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[org_manage]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          role    role    role    role    role    role
scoped_editor   role    role    role    role    role    role
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[org_delete]
owner           ok      ok      ok      ok      ok      ok
admin           role    role    role    role    role    role
editor          role    role    role    role    role    role
scoped_editor   role    role    role    role    role    role
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[ownership_transfer]
owner           ok      ok      ok      ok      ok      ok
admin           role    role    role    role    role    role
editor          role    role    role    role    role    role
scoped_editor   role    role    role    role    role    role
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[billing_view]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          ok      ok      ok      ok      ok      ok
scoped_editor   ok      ok      ok      ok      ok      ok
viewer          ok      ok      ok      ok      ok      ok
non_member      member  member  member  member  member  member
operator        ok      ok      ok      ok      ok      ok

[billing_manage]
owner           ok      ok      ok      ok      ok      ok
admin           role    role    role    role    role    role
editor          role    role    role    role    role    role
scoped_editor   role    role    role    role    role    role
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[analytics_view]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          role    role    role    role    role    role
scoped_editor   role    role    role    role    role    role
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        ok      ok      ok      ok      ok      ok

[api_keys_manage]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          role    role    role    role    role    role
scoped_editor   role    role    role    role    role    role
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[connections_manage]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          role    role    role    role    role    role
scoped_editor   role    role    role    role    role    role
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[audit_view]
owner           ok      ok      ok      ok      ok      ok
admin           ok      ok      ok      ok      ok      ok
editor          role    role    role    role    role    role
scoped_editor   role    role    role    role    role    role
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        ok      ok      ok      ok      ok      ok

[sso_manage]
owner           ok      ok      ok      ok      ok      ok
admin           role    role    role    role    role    role
editor          role    role    role    role    role    role
scoped_editor   role    role    role    role    role    role
viewer          role    role    role    role    role    role
non_member      member  member  member  member  member  member
operator        member  member  member  member  member  member

[operator_access]
owner           op      op      op      op      op      op
admin           op      op      op      op      op      op
editor          op      op      op      op      op      op
scoped_editor   op      op      op      op      op      op
viewer          op      op      op      op      op      op
non_member      op      op      op      op      op      op
operator        ok      ok      ok      ok      ok      ok

[operator_refund]
owner           op      op      op      op      op      op
admin           op      op      op      op      op      op
editor          op      op      op      op      op      op
scoped_editor   op      op      op      op      op      op
viewer          op      op      op      op      op      op
non_member      op      op      op      op      op      op
operator        ok      ok      ok      ok      ok      ok

[operator_adjust]
owner           op      op      op      op      op      op
admin           op      op      op      op      op      op
editor          op      op      op      op      op      op
scoped_editor   op      op      op      op      op      op
viewer          op      op      op      op      op      op
non_member      op      op      op      op      op      op
operator        ok      ok      ok      ok      ok      ok

[operator_models]
owner           op      op      op      op      op      op
admin           op      op      op      op      op      op
editor          op      op      op      op      op      op
scoped_editor   op      op      op      op      op      op
viewer          op      op      op      op      op      op
non_member      op      op      op      op      op      op
operator        ok      ok      ok      ok      ok      ok

[operator_support]
owner           op      op      op      op      op      op
admin           op      op      op      op      op      op
editor          op      op      op      op      op      op
scoped_editor   op      op      op      op      op      op
viewer          op      op      op      op      op      op
non_member      op      op      op      op      op      op
operator        ok      ok      ok      ok      ok      ok
"""

CODES = {
    "ok": "",
    "role": "role_forbidden",
    "member": "not_a_member",
    "404": "project_not_found",
    "sub": "subscription_inactive",
    "proj": "project_required",
    "op": "operator_only",
}

ORG_ID = 1
IN_SCOPE_PROJECT = 10
OUT_OF_SCOPE_PROJECT = 20
PROJECT_FOR_SCOPE = {"in": IN_SCOPE_PROJECT, "out": OUT_OF_SCOPE_PROJECT, "org": None}

ACTORS = {
    "owner": Actor(user_id=1, role=OrgRole.owner),
    "admin": Actor(user_id=2, role=OrgRole.admin),
    "editor": Actor(user_id=3, role=OrgRole.editor),
    "scoped_editor": Actor(
        user_id=4,
        role=OrgRole.editor,
        project_scoped=True,
        project_ids=frozenset({IN_SCOPE_PROJECT}),
    ),
    "viewer": Actor(user_id=5, role=OrgRole.viewer),
    "non_member": Actor(user_id=6),
    "operator": Actor(user_id=7, is_operator=True),  # staff, not a member of this org
}


def _parse(table: str) -> dict[tuple[str, str, str, str], str]:
    lines = [line for line in table.strip().splitlines() if line.strip()]
    columns = [tuple(column.split(":")) for column in lines[0].split()]
    cells: dict[tuple[str, str, str, str], str] = {}
    action = ""
    for line in lines[1:]:
        if line.startswith("["):
            action = line.strip("[]")
            continue
        role, *values = line.split()
        assert len(values) == len(columns), f"{action}/{role}: {len(values)} cells"
        for (scope, subscription), value in zip(columns, values, strict=True):
            cells[(action, role, scope, subscription)] = CODES[value]
    return cells


CELLS = _parse(MATRIX)


def test_matrix_covers_every_action_and_role():
    actions = {action for action, *_ in CELLS}
    roles = {role for _, role, *_ in CELLS}
    assert actions == {action.value for action in Action}
    assert roles == set(ACTORS)
    assert len(CELLS) == len(Action) * len(ACTORS) * 3 * 2


@pytest.mark.parametrize(
    ("action", "role", "scope", "subscription"),
    sorted(CELLS),
    ids=["-".join(key) for key in sorted(CELLS)],
)
def test_policy_cell(action, role, scope, subscription):
    expected = CELLS[(action, role, scope, subscription)]
    target = Target(
        org_id=ORG_ID,
        project_id=PROJECT_FOR_SCOPE[scope],
        subscription_executable=subscription == "act",
    )
    decision = policy.can(ACTORS[role], Action(action), target)
    assert decision.code == expected
    assert bool(decision) is (expected == "")
    if expected:
        assert decision.message.endswith(".")
        assert len(decision.message) > 30  # a sentence for a person, not a code
    else:
        assert decision.message == ""


# --- beyond the matrix -------------------------------------------------------------------------


def test_operator_who_is_a_member_keeps_member_rules_plus_operator_rights():
    operator_viewer = Actor(user_id=9, is_operator=True, role=OrgRole.viewer)
    target = Target(org_id=ORG_ID)
    assert policy.can(operator_viewer, Action.analytics_view, target)
    assert policy.can(operator_viewer, Action.operator_refund, target)
    assert policy.can(operator_viewer, Action.tool_run, target).code == "role_forbidden"
    operator_editor = Actor(user_id=9, is_operator=True, role=OrgRole.editor)
    assert policy.can(operator_editor, Action.tool_run, target)


def test_messages_say_who_can_and_what_next():
    viewer, target = ACTORS["viewer"], Target(org_id=ORG_ID)
    billing = policy.can(ACTORS["admin"], Action.billing_manage, target)
    assert "Only the organization owner can change billing" in billing.message
    assert "Ask your owner" in billing.message
    assert "editor" in policy.can(viewer, Action.tool_run, target).message
    assert "owners and admins" in policy.can(viewer, Action.analytics_view, target).message
    expired = Target(org_id=ORG_ID, subscription_executable=False)
    owner_msg = policy.can(ACTORS["owner"], Action.tool_run, expired).message
    editor_msg = policy.can(ACTORS["editor"], Action.tool_run, expired).message
    assert "still view" in owner_msg and "Billing" in owner_msg
    assert "Ask your owner" in editor_msg


def test_decision_is_truthy_only_when_allowed():
    assert Decision(True)
    assert not Decision(False, "role_forbidden", "No.")


def test_require_raises_not_found_for_out_of_scope_project():
    target = Target(org_id=ORG_ID, project_id=OUT_OF_SCOPE_PROJECT)
    with pytest.raises(NotFound) as caught:
        policy.require(ACTORS["scoped_editor"], Action.asset_view, target)
    assert caught.value.code == "project_not_found"
    assert caught.value.http_status == 404


@pytest.mark.parametrize(
    ("role", "action", "code"),
    [
        ("viewer", Action.tool_run, "role_forbidden"),
        ("non_member", Action.org_view, "not_a_member"),
        ("owner", Action.operator_refund, "operator_only"),
        ("scoped_editor", Action.tool_run, "project_required"),
    ],
)
def test_require_raises_permission_denied_with_the_decision_code(role, action, code):
    with pytest.raises(PermissionDenied) as caught:
        policy.require(ACTORS[role], action, Target(org_id=ORG_ID))
    assert caught.value.code == code
    assert caught.value.http_status == 403


def test_require_expired_subscription_code():
    with pytest.raises(PermissionDenied) as caught:
        policy.require(
            ACTORS["editor"], Action.tool_run, Target(org_id=ORG_ID, subscription_executable=False)
        )
    assert caught.value.code == "subscription_inactive"


def test_require_returns_none_when_allowed():
    assert policy.require(ACTORS["owner"], Action.billing_manage, Target(org_id=ORG_ID)) is None


# --- loaders against the database ---------------------------------------------------------------


def test_actor_for_loads_role_and_scoped_projects(session):
    owner = make_user(session, "owner@example.com")
    scoped = make_user(session, "scoped@example.com")
    outsider = make_user(session, "outsider@example.com")
    staff = make_user(session, "staff@example.com", operator=True)
    org = org_create(session=session, owner=owner, name="Acme")
    approved = Project(org_id=org.id, name="Launch")
    other = Project(org_id=org.id, name="Other")
    session.add_all([approved, other])
    session.flush()
    membership = Membership(org_id=org.id, user_id=scoped.id, role="editor", project_scoped=True)
    session.add(membership)
    session.flush()
    session.add(ProjectAccess(membership_id=membership.id, project_id=approved.id))
    session.flush()

    owner_actor = policy.actor_for(session=session, user=owner, org_id=org.id)
    assert owner_actor == Actor(user_id=owner.id, role=OrgRole.owner)

    scoped_actor = policy.actor_for(session=session, user=scoped, org_id=org.id)
    assert scoped_actor.role == OrgRole.editor
    assert scoped_actor.project_scoped is True
    assert scoped_actor.project_ids == frozenset({approved.id})
    other_target = policy.target_for(session=session, org_id=org.id, project_id=other.id)
    assert policy.can(scoped_actor, Action.asset_view, other_target).code == "project_not_found"

    assert policy.actor_for(session=session, user=outsider, org_id=org.id).role is None
    staff_actor = policy.actor_for(session=session, user=staff, org_id=org.id)
    assert staff_actor.is_operator and staff_actor.role is None
    assert policy.can(staff_actor, Action.org_view, Target(org_id=org.id))


def test_target_for_reads_subscription_status(session):
    owner = make_user(session, "owner@example.com")
    org = org_create(session=session, owner=owner, name="Acme")
    assert policy.target_for(session=session, org_id=org.id).subscription_executable is True

    subscription = session.exec(select(Subscription).where(Subscription.org_id == org.id)).one()
    for status, executable in [
        (SubscriptionStatus.trialing, True),
        (SubscriptionStatus.past_due, False),  # the last payment failed: runs wait
        (SubscriptionStatus.unpaid, False),
        (SubscriptionStatus.expired, False),
        (SubscriptionStatus.canceled, False),
        (SubscriptionStatus.active, True),
    ]:
        subscription.status = status.value
        session.add(subscription)
        session.flush()
        target = policy.target_for(session=session, org_id=org.id)
        assert target.subscription_executable is executable, status


def test_target_for_org_without_subscription_counts_as_active(session):
    owner = make_user(session, "owner@example.com")
    org = org_create(session=session, owner=owner, name="Acme")
    session.delete(session.exec(select(Subscription).where(Subscription.org_id == org.id)).one())
    session.flush()
    assert policy.target_for(session=session, org_id=org.id).subscription_executable is True


def test_target_for_missing_deleted_or_foreign_targets_are_not_found(session):
    owner = make_user(session, "owner@example.com")
    org = org_create(session=session, owner=owner, name="Acme")
    other_org = org_create(session=session, owner=make_user(session, "b@example.com"), name="Beta")
    foreign = Project(org_id=other_org.id, name="Theirs")
    session.add(foreign)
    session.flush()
    with pytest.raises(NotFound):
        policy.target_for(session=session, org_id=org.id, project_id=foreign.id)
    with pytest.raises(NotFound):
        policy.target_for(session=session, org_id=999_999)
    org.deleted_at = utcnow() - timedelta(seconds=1)
    session.add(org)
    session.flush()
    with pytest.raises(NotFound):
        policy.target_for(session=session, org_id=org.id)
