"""Every action acts once and says what happened: a double click (two submits carrying the
same form token) creates one row and shows the first answer; irreversible acts ask first."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pyotp
from sqlmodel import Session, func, select

from core import db
from core.clock import utcnow
from core.crypto import encrypt, hash_password
from models import (
    CreditLedgerEntry,
    FormSubmission,
    Invite,
    Membership,
    Organization,
    Project,
    User,
)
from services import orgs as org_service
from services.policy import actor_for
from state.billing import BillingState
from state.org_new import NewOrgState
from state.register import RegisterState
from state.session import SessionState
from state.team import TeamState
from tests.factories import add_member, make_org, make_user, signed_in_cookie

PASSWORD = "tidal-copper-lantern-2026"


def _count(model, *where) -> int:
    with db.new_session() as fresh:
        return fresh.exec(select(func.count()).select_from(model).where(*where)).one()


def _page(session, page_state, call, state_cls, user, path):
    cookie = signed_in_cookie(session, user)
    session.commit()
    state = page_state(state_cls, cookie=cookie, path=path)
    asyncio.run(call(state, "load"))
    return state


def _redirect_path(spec) -> str:
    values = [json.loads(str(value)) for _name, value in spec.args]
    return next(v for v in values if isinstance(v, str) and v.startswith("/"))


def _acme(session):
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner, plan_key="growth")
    viewer = add_member(session, org, "victor@example.com", "viewer", name="Victor Viewer")
    session.commit()
    return owner, org, viewer


def test_double_submitted_invite_sends_one_and_both_say_sent(session, page_state, call):
    owner, org, _ = _acme(session)
    team = _page(session, page_state, call, TeamState, owner, f"/org/{org.slug}/team")
    form = {"email": "pat@example.com", "form_token": team.form_token}
    asyncio.run(call(team, "send_invite", form))
    first_notice = team.notice
    asyncio.run(call(team, "send_invite", form))  # the second click of a double click
    assert team.error == "" and team.notice == first_notice
    assert first_notice.startswith("Invite sent to pat@example.com.")
    assert team.pending == ""
    assert _count(Invite, Invite.email == "pat@example.com") == 1
    # A new token was issued: the next real invite acts.
    assert team.form_token != form["form_token"]


def test_double_submitted_project_creates_one(session, page_state, call):
    owner, org, _ = _acme(session)
    team = _page(session, page_state, call, TeamState, owner, f"/org/{org.slug}/team")
    form = {"name": "Summer campaign", "form_token": team.form_token}
    asyncio.run(call(team, "create_project", form))
    asyncio.run(call(team, "create_project", form))
    assert team.error == "" and team.notice == "Project Summer campaign created."
    assert _count(Project, Project.org_id == org.id, Project.name == "Summer campaign") == 1
    # Without the old token, the same name is a new request and gets the real answer.
    asyncio.run(call(team, "create_project", {"name": "Summer campaign"}))
    assert "already" in team.error


def test_a_token_someone_else_used_is_refused(session, page_state, call):
    owner, org, _ = _acme(session)
    admin = add_member(session, org, "ada@example.com", "admin", name="Ada Admin")
    session.commit()
    team = _page(session, page_state, call, TeamState, owner, f"/org/{org.slug}/team")
    token = team.form_token
    asyncio.run(call(team, "create_project", {"name": "Owner's", "form_token": token}))
    other = _page(session, page_state, call, TeamState, admin, f"/org/{org.slug}/team")
    asyncio.run(call(other, "create_project", {"name": "Admin's", "form_token": token}))
    assert other.error == "This form was already submitted. Reload the page and try again."
    assert _count(Project, Project.name == "Admin's") == 0


def test_double_submitted_new_organization_creates_one(session, page_state, call):
    user = make_user(session, "nia@example.com", "Nia")
    cookie = signed_in_cookie(session, user)
    session.commit()
    state = page_state(NewOrgState, cookie=cookie, path="/orgs/new")
    asyncio.run(call(state, "load"))
    form = {"name": "Nia's Agency", "form_token": state.form_token}
    first = asyncio.run(call(state, "create", form))
    second = asyncio.run(call(state, "create", form))
    assert _redirect_path(first) == _redirect_path(second) == "/org/nias-agency/studio"
    assert state.error == "" and not state.pending
    assert _count(Organization, Organization.name == "Nia's Agency") == 1


def test_double_submitted_registration_answers_the_same_once(session, page_state, call):
    state = page_state(RegisterState, cookie="", path="/register")
    asyncio.run(call(state, "load"))
    form = {
        "email": "Reg@Example.com",
        "name": "Reg",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        "form_token": state.form_token,
    }
    asyncio.run(call(state, "submit", form))
    asyncio.run(call(state, "submit", form))
    assert state.error == "" and state.registered_email == "reg@example.com"
    assert _count(User, User.email == "reg@example.com") == 1


def test_an_oversized_email_is_not_echoed_back(session, page_state, call):
    state = page_state(RegisterState, cookie="", path="/register")
    asyncio.run(call(state, "load"))
    huge = "a" * 100_000 + "@example.com"
    asyncio.run(
        call(state, "submit", {"email": huge, "password": PASSWORD, "password_confirm": PASSWORD})
    )
    assert state.error_field == "email"
    assert len(state.error) < 200 and "at most 320" in state.error


def test_double_clicked_pool_return_writes_one_ledger_row(session, engine, page_state, call):
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)  # Free: 50 credits at creation
    project = org_service.project_create(session=session, actor=owner, org_id=org.id, name="P")
    session.commit()
    billing = _page(session, page_state, call, BillingState, owner, f"/org/{org.slug}/billing")
    allocate = {
        "project_id": str(project.id),
        "pool_credits": "5",
        "form_token": billing.form_token,
    }
    asyncio.run(call(billing, "allocate_pool", allocate))
    asyncio.run(call(billing, "allocate_pool", allocate))  # a double click sets aside once
    token = billing.form_token
    assert [pool.credits for pool in billing.pools] == ["5"]
    asyncio.run(call(billing, "return_pool", project.id, token))
    asyncio.run(call(billing, "return_pool", project.id, token))
    assert billing.error == ""
    assert billing.notice == "Pooled credits returned to the general balance."
    kinds = CreditLedgerEntry.org_id == org.id, CreditLedgerEntry.kind == "pool_return"
    assert _count(CreditLedgerEntry, *kinds) == 1


def test_address_change_asks_first_then_moves_and_old_links_follow(session, page_state, call):
    owner, org, viewer = _acme(session)
    old = org.slug
    team = _page(session, page_state, call, TeamState, owner, f"/org/{old}/team")
    asyncio.run(call(team, "change_slug", {"slug": "Tidal-Works"}))
    assert team.slug_to_confirm == "tidal-works" and team.error == ""
    assert _count(Organization, Organization.slug == "tidal-works") == 0  # nothing changed yet
    asyncio.run(call(team, "cancel_slug_change"))
    assert team.slug_to_confirm == ""

    asyncio.run(call(team, "change_slug", {"slug": "tidal-works"}))
    redirect = asyncio.run(call(team, "confirm_slug_change", team.form_token))
    assert _redirect_path(redirect) == f"/org/tidal-works/team?moved_from={old}"

    # The new page says what happened.
    moved = _page(
        session, page_state, call, TeamState, owner, f"/org/tidal-works/team?moved_from={old}"
    )
    assert moved.notice.startswith("The organization's address is now /org/tidal-works.")
    assert f"/org/{old}" in moved.notice and "90 days" in moved.notice

    # A member opening an old link lands on the same page at the new address, told why.
    cookie = signed_in_cookie(session, viewer)
    session.commit()
    shell = page_state(SessionState, cookie=cookie, path=f"/org/{old}/billing")
    redirect, toast = asyncio.run(call(shell, "load_org"))
    assert _redirect_path(redirect) == f"/org/tidal-works/billing?moved_from={old}"
    assert "moved" in json.dumps(str(toast))

    # The old address is never given to another organization.
    other_owner = make_user(session, "zed@example.com")
    session.commit()
    other = make_org(session, other_owner, name="Zed")
    session.commit()
    zed = _page(session, page_state, call, TeamState, other_owner, f"/org/{other.slug}/team")
    asyncio.run(call(zed, "change_slug", {"slug": old}))
    assert "already used by another organization" in zed.error


def test_a_stranger_opening_an_old_address_is_not_redirected(session, page_state, call):
    owner, org, _ = _acme(session)
    old = org.slug
    with db.new_session() as s:
        org_service.org_change_slug(
            session=s, actor=s.get(User, owner.id), org_id=org.id, slug="moved-on"
        )
        s.commit()
    stranger = make_user(session, "sam@example.com")
    cookie = signed_in_cookie(session, stranger)
    session.commit()
    shell = page_state(SessionState, cookie=cookie, path=f"/org/{old}/studio")
    assert asyncio.run(call(shell, "load_org")) is None
    assert shell.org_not_found


def test_ownership_transfer_with_two_factor_needs_a_code(session, page_state, call):
    owner, org, viewer = _acme(session)
    owner.password_hash = hash_password(PASSWORD)
    session.add(owner)
    session.commit()
    cookie = signed_in_cookie(session, owner)
    # 2FA turned on after this sign-in (enrolment itself would end the session).
    owner.totp_secret_encrypted = encrypt(pyotp.random_base32())
    owner.totp_enabled_at = utcnow()
    session.add(owner)
    session.commit()
    team = page_state(TeamState, cookie=cookie, path=f"/org/{org.slug}/team")
    asyncio.run(call(team, "load"))
    assert team.needs_totp
    asyncio.run(call(team, "set_transfer_user", str(viewer.id)))
    asyncio.run(call(team, "ask_transfer", True))
    asyncio.run(call(team, "transfer_ownership", {"password": PASSWORD}))
    assert team.error.startswith("Enter the 6-digit code")
    asyncio.run(call(team, "transfer_ownership", {"password": PASSWORD, "totp_code": "000000"}))
    assert "not right" in team.error
    with db.new_session() as fresh:
        assert actor_for(session=fresh, user=viewer, org_id=org.id).role == "viewer"


def test_an_operator_on_a_customers_team_is_not_offered_leave(session, page_state, call):
    owner, org, _ = _acme(session)
    operator = make_user(session, "op@creative-studio.test", operator=True)
    session.commit()
    team = _page(session, page_state, call, TeamState, operator, f"/org/{org.slug}/team")
    assert team.members and not team.is_member
    member = _page(session, page_state, call, TeamState, owner, f"/org/{org.slug}/team")
    assert member.is_member


def test_fresh_invite_expires_in_seven_days(session, page_state, call):
    owner, org, _ = _acme(session)
    team = _page(session, page_state, call, TeamState, owner, f"/org/{org.slug}/team")
    asyncio.run(call(team, "send_invite", {"email": "new@example.com"}))
    assert team.invites[0].expires.endswith("(in 7 days)")


def test_form_submissions_are_kept_per_purpose(session, page_state, call):
    owner, org, _ = _acme(session)
    team = _page(session, page_state, call, TeamState, owner, f"/org/{org.slug}/team")
    asyncio.run(call(team, "create_project", {"name": "A", "form_token": team.form_token}))
    with Session(db.get_engine()) as fresh:
        rows = fresh.exec(select(FormSubmission)).all()
    assert [(r.purpose, r.user_id, r.result) for r in rows] == [("project_create", owner.id, "A")]
    assert _count(Membership, Membership.org_id == org.id) == 2


def test_a_used_reset_link_says_so_before_the_form(session, page_state, call):
    from services import auth as auth_service
    from state.password_reset import PasswordResetState

    user = make_user(session, "rita@example.com")
    session.commit()
    token = auth_service._email_token_issue(
        session,
        user=user,
        purpose=auth_service.EmailTokenPurpose.reset_password,
        ttl=timedelta(hours=1),
    )
    session.commit()
    state = page_state(PasswordResetState, cookie="", path=f"/reset-password?token={token}")
    asyncio.run(call(state, "load_reset"))
    assert state.link_usable and state.error == ""
    asyncio.run(call(state, "set_password", {"password": PASSWORD, "password_confirm": PASSWORD}))
    assert state.done
    again = page_state(PasswordResetState, cookie="", path=f"/reset-password?token={token}")
    asyncio.run(call(again, "load_reset"))
    assert not again.link_usable
    assert "already been used" in again.error
    broken = page_state(PasswordResetState, cookie="", path="/reset-password?token=nope")
    asyncio.run(call(broken, "load_reset"))
    assert not broken.link_usable and "not valid" in broken.error


def test_credit_history_folds_a_run_into_one_line_with_its_net_cost(session, page_state, call):
    from models import Generation
    from services import credits as credit_service

    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)  # 50 credits
    project = org_service.project_create(session=session, actor=owner, org_id=org.id, name="Autumn")
    run = Generation(
        public_id="gen_ledger01",
        org_id=org.id,
        user_id=owner.id,
        project_id=project.id,
        model_key="local-text",
        modality="text",
        prompt="p",
        status="succeeded",
    )
    session.add(run)
    session.flush()
    credit_service.credits_hold(
        session=session,
        org_id=org.id,
        amount_millicredits=3000,
        idempotency_key="hold-1",
        generation_id=run.id,
        project_id=project.id,
    )
    credit_service.credits_settle(
        session=session, actual_millicredits=1250, idempotency_key="settle-1", generation_id=run.id
    )
    session.commit()
    billing = _page(session, page_state, call, BillingState, owner, f"/org/{org.slug}/billing")
    [run_line] = [row for row in billing.ledger if row.kind.startswith("Run")]
    assert run_line.kind == "Run gen_ledger01"
    assert run_line.amount == "-1.25"
    assert run_line.detail.startswith("Autumn: net cost 1.25 credits (Hold -3 · Settle +1.75)")
    assert [row.kind for row in billing.ledger] == ["Run gen_ledger01", "Monthly grant"]

    asyncio.run(
        call(billing, "allocate_pool", {"project_id": str(project.id), "pool_credits": "5"})
    )
    assert billing.ledger[0].detail == "Autumn: 5 credits set aside for the project"
    with db.new_session() as fresh:
        exported = credit_service.ledger_csv(session=fresh, org_id=org.id)
    header, *lines = exported.splitlines()
    assert "project_name" in header and "run_id" in header
    assert any("Autumn" in line and "gen_ledger01" in line for line in lines)
