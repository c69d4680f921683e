"""SessionState: who is signed in and in which organization, as the shell's on_load sees it."""

from __future__ import annotations

import asyncio

from sqlmodel import Session

from core import routes
from services import auth as auth_service
from state.session import SessionState
from tests.factories import add_member, make_org, make_user, signed_in_cookie


def _args(event_spec) -> dict:
    """The arguments of a returned event (a redirect's path, a script's code)."""
    return {str(name): value._var_value for name, value in event_spec.args}


def _setup(session):
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    admin = add_member(session, org, "ada@example.com", "admin", name="Ada Admin")
    session.commit()
    return owner, org, admin


def test_load_org_as_member_fills_role_plan_and_what_they_may_do(session, page_state, call):
    _owner, org, admin = _setup(session)
    cookie = signed_in_cookie(session, admin)
    session.commit()
    state = page_state(SessionState, cookie=cookie, path=f"/org/{org.slug}/team")

    assert asyncio.run(call(state, "load_org")) is None
    assert state.ready and state.signed_in
    assert not state.org_not_found
    assert (state.org_slug, state.org_name) == (org.slug, "Acme Marketing")
    assert state._org_role == "admin" and state.org_role_label == "Admin"
    assert state.user_name == "Ada Admin" and state.user_initials == "AA"
    assert "team_manage" in state.allowed_actions
    assert "billing_manage" not in state.allowed_actions
    assert [link.slug for link in state.orgs] == [org.slug]
    assert state.has_expired_connection is False


def test_load_org_as_non_member_says_not_found(session, page_state, call):
    _owner, org, _admin = _setup(session)
    stranger = make_user(session, "sam@example.com")
    cookie = signed_in_cookie(session, stranger)
    session.commit()
    state = page_state(SessionState, cookie=cookie, path=f"/org/{org.slug}/studio")

    asyncio.run(call(state, "load_org"))
    assert state.ready
    assert state.org_not_found
    assert state.org_name == "" and state._org_role == ""
    assert state.allowed_actions == []


def test_load_org_of_an_unknown_address_says_not_found(session, page_state, call):
    _owner, _org, admin = _setup(session)
    cookie = signed_in_cookie(session, admin)
    session.commit()
    state = page_state(SessionState, cookie=cookie, path="/org/nowhere/studio")
    asyncio.run(call(state, "load_org"))
    assert state.org_not_found


def test_signed_out_visitor_is_sent_to_sign_in_and_back(session, page_state, call):
    _owner, org, _admin = _setup(session)
    path = f"/org/{org.slug}/billing"
    state = page_state(SessionState, cookie="", path=path)

    redirect = asyncio.run(call(state, "load_org"))
    assert _args(redirect)["path"] == routes.sign_in(path)
    assert not state.ready and not state.signed_in

    state = page_state(SessionState, cookie=f"{routes.SESSION_COOKIE}=forged-token", path=path)
    redirect = asyncio.run(call(state, "load_org"))
    assert _args(redirect)["path"] == routes.sign_in(path)

    state = page_state(SessionState, cookie="", path=routes.NEW_ORG)
    redirect = asyncio.run(call(state, "require_signed_in"))
    assert _args(redirect)["path"] == routes.sign_in(routes.NEW_ORG)


def test_home_goes_to_the_first_organization_or_to_creating_one(session, page_state, call):
    owner, org, _admin = _setup(session)
    loner = make_user(session, "lou@example.com")
    owner_cookie, loner_cookie = signed_in_cookie(session, owner), signed_in_cookie(session, loner)
    session.commit()

    home = page_state(SessionState, cookie=owner_cookie, path="/")
    assert _args(asyncio.run(call(home, "go_home")))["path"] == routes.org_home(org.slug)
    lonely = page_state(SessionState, cookie=loner_cookie, path="/")
    assert _args(asyncio.run(call(lonely, "go_home")))["path"] == routes.NEW_ORG
    signed_out = page_state(SessionState, cookie="", path="/")
    assert _args(asyncio.run(call(signed_out, "go_home")))["path"] == routes.SIGN_IN


def test_switching_to_an_organization_one_does_not_belong_to_is_refused(session, page_state, call):
    _owner, org, admin = _setup(session)
    cookie = signed_in_cookie(session, admin)
    session.commit()
    state = page_state(SessionState, cookie=cookie, path=f"/org/{org.slug}/studio")
    asyncio.run(call(state, "load_org"))

    assert _args(asyncio.run(call(state, "switch_org", org.slug)))["path"] == routes.org_home(
        org.slug
    )
    refused = asyncio.run(call(state, "switch_org", "someone-else"))
    assert "You are not a member of that organization." in str(refused)


def test_sign_out_ends_the_server_side_session(session, page_state, call, engine):
    _owner, org, admin = _setup(session)
    cookie = signed_in_cookie(session, admin)
    session.commit()
    token = cookie.split("=", 1)[1]
    state = page_state(SessionState, cookie=cookie, path=f"/org/{org.slug}/studio")
    asyncio.run(call(state, "load_org"))

    script = asyncio.run(call(state, "sign_out"))
    assert routes.API_AUTH_SIGN_OUT in _args(script)["javascript_code"]
    with Session(engine) as fresh:
        assert auth_service.session_resolve(session=fresh, token=token) is None
    assert state.user_email == ""
