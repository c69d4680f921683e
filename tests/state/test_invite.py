"""Invite accept page handlers: what the person who opened an invitation link sees."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from sqlmodel import select

from core import db, routes
from models import Membership
from services import invites as invite_service
from state.invite import InviteState
from tests.factories import make_org, make_user, signed_in_cookie


def invited(session, email: str = "pat@example.com"):
    """Olivia's organization and a pending editor invite to `email`; returns (org, token)."""
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    _, url = invite_service.invite_create(
        session=session,
        actor=owner,
        org_id=org.id,
        email=email,
        role="editor",
        base_url="http://localhost:3000",
    )
    session.commit()
    return org, url.split("token=", 1)[1]


def invite_page(session, page_state, call, token: str, user=None) -> InviteState:
    cookie = signed_in_cookie(session, user) if user is not None else ""
    session.commit()
    page = page_state(
        InviteState, cookie=cookie, path=f"{routes.INVITE}?{urlencode({'token': token})}"
    )
    asyncio.run(call(page, "load"))
    return page


def member_ids(org) -> list[int]:
    with db.new_session() as fresh:
        return list(fresh.exec(select(Membership.user_id).where(Membership.org_id == org.id)))


def test_the_invited_address_signed_in_joins(session, page_state, call):
    org, token = invited(session)
    pat = make_user(session, "Pat@Example.com", "Pat")
    page = invite_page(session, page_state, call, token, pat)
    assert page.status == "match"
    assert (page.org_name, page.role, page.invited_by) == (
        "Acme Marketing",
        "Editor",
        "Olivia Owner",
    )
    assert page.invited_email == "pat@example.com" and page.signed_in_email == "Pat@Example.com"

    result = asyncio.run(call(page, "accept"))
    assert page.error == "" and page.status == "match"
    assert pat.id in member_ids(org)
    assert result is not None  # a redirect to the organization's studio
    assert routes.org_home(org.slug) in str(result)


def test_another_address_signed_in_is_told_both(session, page_state, call):
    org, token = invited(session)
    sam = make_user(session, "sam@example.com", "Sam")
    page = invite_page(session, page_state, call, token, sam)
    assert page.status == "mismatch"
    assert (page.invited_email, page.signed_in_email) == ("pat@example.com", "sam@example.com")

    asyncio.run(call(page, "accept"))  # the browser can still call it
    assert page.status == "mismatch" and not page.joining
    assert (page.invited_email, page.signed_in_email) == ("pat@example.com", "sam@example.com")
    assert sam.id not in member_ids(org)


def test_signed_out_is_offered_sign_in_and_accept_sends_there(session, page_state, call):
    _, token = invited(session)
    page = invite_page(session, page_state, call, token)
    assert page.status == "signed_out" and page.invited_email == "pat@example.com"
    result = asyncio.run(call(page, "accept"))
    assert routes.SIGN_IN in str(result) and not page.joining


def test_an_unknown_or_withdrawn_link_says_why(session, page_state, call):
    page = invite_page(session, page_state, call, "not-a-real-token")
    assert page.status == "unusable"
    assert page.message.startswith("This invite link is not valid.")

    page = invite_page(session, page_state, call, "x" * 10_000)
    assert page.status == "unusable"
