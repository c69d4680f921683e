"""Team page handlers called as the browser calls them: what a person sees after each one."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from core import db
from core.crypto import hash_password
from models import Invite, Membership, OutboxMail, Project
from services import invites as invite_service
from services import orgs as org_service
from services.policy import actor_for
from state.org_page import NOT_FOUND_RELOAD
from state.team import TeamState
from tests.factories import add_member, make_org, make_user, signed_in_cookie

TEAM_MANAGE_REFUSED = (
    "Only owners and admins can invite, remove or change members. "
    "Ask one of them to make the change."
)


@pytest.fixture
def acme(session):
    """An organization on the Free plan (2 seats) with its owner and a viewer."""
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    viewer = add_member(session, org, "victor@example.com", "viewer", name="Victor Viewer")
    session.commit()
    return owner, org, viewer


def team_for(session, page_state, call, user, org) -> TeamState:
    cookie = signed_in_cookie(session, user)
    session.commit()
    team = page_state(TeamState, cookie=cookie, path=f"/org/{org.slug}/team")
    asyncio.run(call(team, "load"))
    return team


def in_db(read):
    """Read what the handlers committed, in a unit of work of its own (SQLite has one writer)."""
    with db.new_session() as fresh:
        return read(fresh)


def pending_emails(org) -> list[str]:
    return in_db(
        lambda s: [i.email for i in invite_service.invites_pending(session=s, org_id=org.id)]
    )


def test_owner_sees_members_invites_and_what_they_may_do(session, page_state, call, acme):
    owner, org, _ = acme
    team = team_for(session, page_state, call, owner, org)
    assert [(m.name, m.role_label, m.is_self) for m in team.members] == [
        ("Olivia Owner", "Owner", True),
        ("Victor Viewer", "Viewer", False),
    ]
    assert team.can_manage_team and team.can_manage_org and team.is_owner
    assert team.seats_line == "Seats 2 of 2 (Free)"
    assert team.seat_notice.limit == "seats"  # every seat is taken: the form gives way
    assert team.invites == [] and team.error == ""
    assert team.billing_href == f"/org/{org.slug}/billing"


def test_send_invite_creates_it_mails_it_and_says_so(session, page_state, call):
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    team = team_for(session, page_state, call, owner, org)
    asyncio.run(call(team, "send_invite", {"email": "Pat@Example.com"}))
    assert team.section == "invite" and team.error == ""
    assert team.notice == "Invite sent to pat@example.com. The link expires in 7 days."
    assert [row.email for row in team.invites] == ["pat@example.com"]
    assert pending_emails(org) == ["pat@example.com"]
    subject = in_db(
        lambda s: s.exec(
            select(OutboxMail.subject).where(OutboxMail.to_address == "pat@example.com")
        ).one()
    )
    assert subject == "Olivia Owner invited you to Acme Marketing on Creative Studio"


def test_a_seat_beyond_the_free_plan_names_the_limit(session, page_state, call):
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    team = team_for(session, page_state, call, owner, org)
    asyncio.run(call(team, "send_invite", {"email": "pat@example.com"}))
    asyncio.run(call(team, "send_invite", {"email": "sam@example.com"}))
    notice = team.limit_notice
    assert (notice.limit, notice.label, notice.used, notice.allowed, notice.plan_name) == (
        "seats",
        "Seat",
        2,
        2,
        "Free",
    )
    assert notice.message.startswith("Seat limit reached (2 of 2 on Free).")
    assert team.section == "invite" and team.notice == "" and team.error == ""
    assert pending_emails(org) == ["pat@example.com"]


def test_scoped_editor_needs_a_project(session, page_state, call, acme):
    owner, org, _ = acme
    team = team_for(session, page_state, call, owner, org)
    asyncio.run(call(team, "set_invite_role", "editor_scoped"))
    asyncio.run(call(team, "send_invite", {"email": "pat@example.com"}))
    assert team.error.startswith("Pick at least one project for a scoped editor")
    assert pending_emails(org) == []


def test_a_viewer_is_refused_and_nothing_changes(session, page_state, call, acme):
    owner, org, viewer = acme
    team = team_for(session, page_state, call, viewer, org)
    assert not team.can_manage_team and team.managers == "Olivia Owner"
    asyncio.run(call(team, "send_invite", {"email": "pat@example.com"}))
    assert team.error == TEAM_MANAGE_REFUSED and team.notice == ""
    assert pending_emails(org) == []

    asyncio.run(call(team, "remove_member", str(owner.id)))
    assert team.section == "members" and team.error == TEAM_MANAGE_REFUSED
    members = in_db(
        lambda s: s.exec(select(Membership.user_id).where(Membership.org_id == org.id)).all()
    )
    assert sorted(members) == sorted([owner.id, viewer.id])


@pytest.mark.parametrize("bad_id", ["abc", None, "1; drop", -3, True])
@pytest.mark.parametrize(
    "handler", ["revoke_invite", "resend_invite", "remove_member", "archive_project"]
)
def test_a_malformed_id_from_the_browser_is_not_found(
    session, page_state, call, acme, bad_id, handler
):
    owner, org, _ = acme
    team = team_for(session, page_state, call, owner, org)
    asyncio.run(call(team, handler, bad_id))
    assert team.error == NOT_FOUND_RELOAD
    assert team.notice == ""
    assert len(team.members) == 2  # the page still shows the team


@pytest.mark.parametrize("handler", ["change_role", "ask_remove", "start_rename"])
def test_a_malformed_id_in_a_picker_is_not_found(session, page_state, call, acme, handler):
    owner, org, _ = acme
    team = team_for(session, page_state, call, owner, org)
    args = ("abc", "admin") if handler == "change_role" else ("abc",)
    asyncio.run(call(team, handler, *args))
    assert team.error == NOT_FOUND_RELOAD
    assert team.confirm_remove_user_id == 0 and team.renaming_project_id == 0


def test_revoke_and_remove_say_what_happened(session, page_state, call, acme):
    owner, org, viewer = acme
    team = team_for(session, page_state, call, owner, org)
    asyncio.run(call(team, "remove_member", viewer.id))
    assert team.notice == "Victor Viewer was removed from the organization; their seat is free."
    asyncio.run(call(team, "send_invite", {"email": "pat@example.com"}))
    invite_id = team.invites[0].invite_id
    asyncio.run(call(team, "revoke_invite", str(invite_id)))
    assert team.section == "invites"
    assert team.notice == "The invite to pat@example.com was withdrawn; its link now says so."
    assert team.invites == []
    assert in_db(lambda s: s.get(Invite, invite_id).status) == "revoked"


def test_archive_project_and_a_project_of_another_org(session, page_state, call, acme):
    owner, org, _ = acme
    team = team_for(session, page_state, call, owner, org)
    asyncio.run(call(team, "create_project", {"name": "Summer campaign"}))
    assert team.notice == "Project Summer campaign created."
    [project] = team.projects
    asyncio.run(call(team, "archive_project", str(project.project_id)))
    assert team.section == "projects"
    assert team.notice == (
        "Summer campaign archived. Its assets stay readable; restore it any time."
    )
    assert team.projects == []
    asyncio.run(call(team, "set_show_archived", True))
    assert [(p.name, p.archived) for p in team.projects] == [("Summer campaign", True)]

    stranger = make_user(session, "sara@example.com", "Sara Stranger")
    other = make_org(session, stranger, name="Other Co")
    other_project_id = org_service.project_create(
        session=session, actor=stranger, org_id=other.id, name="Secret"
    ).id
    session.commit()
    asyncio.run(call(team, "archive_project", other_project_id))
    assert team.error.startswith("This project does not exist or you do not have access to it.")
    assert team.notice == ""
    assert in_db(lambda s: s.get(Project, other_project_id).archived_at) is None


OWNER_PASSWORD = "tidal-copper-lantern-2026"


def test_transfer_ownership_makes_the_owner_an_admin(session, page_state, call, acme):
    owner, org, viewer = acme
    owner.password_hash = hash_password(OWNER_PASSWORD)
    session.add(owner)
    session.commit()
    team = team_for(session, page_state, call, owner, org)
    asyncio.run(call(team, "set_transfer_user", "x" * 5000))
    assert len(team.transfer_user_id) <= 40
    asyncio.run(call(team, "transfer_ownership", {"password": OWNER_PASSWORD}))
    assert team.error.startswith("That member is not in this organization any more.")
    asyncio.run(call(team, "set_transfer_user", str(viewer.id)))
    asyncio.run(call(team, "ask_transfer", True))
    assert team.confirm_transfer and not team.needs_totp
    # The step-up: a wrong password transfers nothing and says why.
    asyncio.run(call(team, "transfer_ownership", {"password": "not-my-password-at-all"}))
    assert team.error.startswith("That password is not correct, so ownership was not transferred")
    assert in_db(lambda s: actor_for(session=s, user=viewer, org_id=org.id).role) == "viewer"
    form = {"password": OWNER_PASSWORD, "form_token": team.form_token}
    asyncio.run(call(team, "transfer_ownership", form))
    assert team.error == ""
    assert team.notice == (
        "Victor Viewer (victor@example.com) now owns the organization; you are an admin."
    )
    assert not team.is_owner and team.can_manage_team
    assert in_db(lambda s: actor_for(session=s, user=viewer, org_id=org.id).role) == "owner"


def test_a_signed_out_tab_sees_nothing(session, page_state, call, acme):
    _, org, _ = acme
    team = page_state(TeamState, cookie="", path=f"/org/{org.slug}/team")
    asyncio.run(call(team, "load"))
    assert team.members == [] and team.invites == []
    asyncio.run(call(team, "send_invite", {"email": "pat@example.com"}))
    assert team.error == "Your session has ended. Sign in again."
    assert pending_emails(org) == []
