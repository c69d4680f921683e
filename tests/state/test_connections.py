"""Settings > Connections: members see the list; owners and admins connect and disconnect."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import Session

from core import routes
from core.clock import utcnow
from core.crypto import encrypt
from models import OAuthConnection
from state.connections import ConnectionsState
from state.org_page import NOT_FOUND_RELOAD
from state.session import SessionState
from tests.factories import add_member, make_org, make_user, signed_in_cookie

ONLY_MANAGERS = (
    "Only owners and admins can connect or disconnect platforms. Ask one of them to do it."
)


@pytest.fixture(autouse=True)
def _no_platform_credentials(monkeypatch):
    for name in ("LINKEDIN", "META", "GOOGLE_ADS", "X"):
        monkeypatch.delenv(f"{name}_CLIENT_ID", raising=False)
        monkeypatch.delenv(f"{name}_CLIENT_SECRET", raising=False)


def _args(event_spec) -> dict:
    return {str(name): value._var_value for name, value in event_spec.args}


def _setup(session):
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    viewer = add_member(session, org, "victor@example.com", "viewer")
    expired = OAuthConnection(
        org_id=org.id,
        provider_key="linkedin",
        account_id="li-1",
        account_label="Acme Inc. (LinkedIn page)",
        scopes=["openid", "profile"],
        access_token_encrypted=encrypt("old-access"),
        refresh_token_encrypted=encrypt("old-refresh"),
        expires_at=utcnow() - timedelta(hours=2),
        status="expired",
        last_error="LinkedIn refused to renew the access (invalid_grant). Reconnect.",
    )
    session.add(expired)
    session.commit()
    return owner, org, viewer, expired


def _connections(session, page_state, user, org):
    cookie = signed_in_cookie(session, user)
    session.commit()
    return page_state(ConnectionsState, cookie=cookie, path=f"/org/{org.slug}/settings")


def _status(engine, connection_id: int) -> str:
    with Session(engine) as fresh:
        return fresh.get(OAuthConnection, connection_id).status


def test_owner_sees_the_expired_connection_and_the_red_dot(session, page_state, call):
    owner, org, _viewer, expired = _setup(session)
    page = _connections(session, page_state, owner, org)

    asyncio.run(call(page, "load"))
    assert page.error == "" and page.loaded and page.can_manage
    [card] = page.connections
    assert (card.id, card.provider_name, card.status_label) == (expired.id, "LinkedIn", "Expired")
    assert card.expired and "invalid_grant" in card.detail
    assert card.scopes_text == "openid, profile"
    linkedin = next(p for p in page.providers if p.key == "linkedin")
    assert linkedin.connected and not linkedin.configured
    assert linkedin.env_vars == []  # server variables are for operators, not customers
    session_state = asyncio.run(page.get_state(SessionState))
    assert session_state.has_expired_connection is True


def test_viewer_sees_the_list_but_cannot_connect_or_disconnect(session, page_state, call, engine):
    _owner, org, viewer, expired = _setup(session)
    page = _connections(session, page_state, viewer, org)

    asyncio.run(call(page, "load"))
    assert page.loaded and not page.can_manage
    assert [card.id for card in page.connections] == [expired.id]
    session_state = asyncio.run(page.get_state(SessionState))
    assert session_state.has_expired_connection is False

    assert asyncio.run(call(page, "connect", "linkedin")) is None
    assert page.error == ONLY_MANAGERS
    assert asyncio.run(call(page, "reconnect", str(expired.id))) is None
    assert page.error == ONLY_MANAGERS
    asyncio.run(call(page, "disconnect", str(expired.id)))
    assert page.error == ONLY_MANAGERS
    assert page.notice == ""
    assert _status(engine, expired.id) == "expired"
    assert [card.id for card in page.connections] == [expired.id]


def test_malformed_connection_id_says_not_found(session, page_state, call, engine):
    owner, org, _viewer, expired = _setup(session)
    page = _connections(session, page_state, owner, org)
    asyncio.run(call(page, "load"))

    for handler in ("reconnect", "disconnect"):
        assert asyncio.run(call(page, handler, "abc")) is None
        assert page.error == NOT_FOUND_RELOAD, handler
    assert asyncio.run(call(page, "reconnect", str(expired.id + 100))) is None
    assert page.error == NOT_FOUND_RELOAD
    assert _status(engine, expired.id) == "expired"


def test_disconnect_deletes_the_tokens_and_says_so(session, page_state, call, engine):
    owner, org, _viewer, expired = _setup(session)
    page = _connections(session, page_state, owner, org)
    asyncio.run(call(page, "load"))

    asyncio.run(call(page, "disconnect", str(expired.id)))
    assert page.error == ""
    assert page.notice == "LinkedIn was disconnected and its tokens were deleted."
    assert page.connections == []
    assert _status(engine, expired.id) == "revoked"
    session_state = asyncio.run(page.get_state(SessionState))
    assert session_state.has_expired_connection is False

    asyncio.run(call(page, "disconnect", str(expired.id)))
    assert page.error == "That connection was not found; it may have been disconnected already."


def test_a_platform_without_credentials_is_not_available_yet(session, page_state, call):
    owner, org, _viewer, expired = _setup(session)
    page = _connections(session, page_state, owner, org)
    asyncio.run(call(page, "load"))
    # A customer is never told to set server variables.
    linkedin = next(p for p in page.providers if p.key == "linkedin")
    assert not linkedin.configured and linkedin.env_vars == []

    assert asyncio.run(call(page, "reconnect", str(expired.id))) is None
    assert page.error == "LinkedIn is not available yet. Contact support if you need it."
    assert asyncio.run(call(page, "connect", "myspace")) is None
    assert page.error_code == "connection_provider_unknown"


def test_connect_and_reconnect_leave_for_the_start_route(session, page_state, call, monkeypatch):
    monkeypatch.setenv("LINKEDIN_CLIENT_ID", "client-id")
    monkeypatch.setenv("LINKEDIN_CLIENT_SECRET", "client-secret")
    owner, org, _viewer, expired = _setup(session)
    page = _connections(session, page_state, owner, org)
    asyncio.run(call(page, "load"))

    script = _args(asyncio.run(call(page, "connect", "linkedin")))["javascript_code"]
    assert f"{routes.connections_start('linkedin')}?org={org.slug}" in script
    assert page.error == ""
    script = _args(asyncio.run(call(page, "reconnect", str(expired.id))))["javascript_code"]
    assert f"?org={org.slug}&reconnect={expired.id}" in script
