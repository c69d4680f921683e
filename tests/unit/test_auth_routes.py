"""The cookie routes: handoff sets an HttpOnly cookie once; sign-out never ends a live session by GET."""

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from core import routes
from core.clock import utcnow
from core.crypto import hash_password
from core.routes import PREAUTH_COOKIE, SESSION_COOKIE
from creative_studio.api import build_api
from models import User
from models.enums import OrgRole
from services import auth, orgs
from tests.factories import make_org, make_user

PASSWORD = "copper-lantern-river-9"


def _browser() -> tuple[TestClient, str]:
    """A client that opened the sign-in page (so it holds a pre-auth cookie), and that cookie."""
    client = TestClient(build_api(), base_url="http://localhost")
    opened = client.get("/auth/sign-in", params={"next": "/org/x/studio"}, follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"].endswith("/sign-in?next=%2Forg%2Fx%2Fstudio&browser=1")
    set_cookie = opened.headers["set-cookie"]
    assert set_cookie.startswith(PREAUTH_COOKIE + "=")
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
    assert "Max-Age" not in set_cookie  # ends with the browser
    return client, client.cookies[PREAUTH_COOKIE]


def _signed_in_client(session) -> tuple[TestClient, object]:
    user = User(
        email="route@example.com",
        name="Route",
        password_hash=hash_password(PASSWORD),
        email_verified_at=utcnow(),
    )
    session.add(user)
    session.commit()
    client, binding = _browser()
    challenge = auth.sign_in_password(
        session=session, email=user.email, password=PASSWORD, browser_binding=binding
    )
    response = client.get(
        "/auth/session",
        params={"code": challenge.handoff_code, "next": "/org/x/studio"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"].endswith("/org/x/studio")
    cookie_header = response.headers["set-cookie"]
    assert "HttpOnly" in cookie_header and "SameSite=lax" in cookie_header
    return client, user


def test_handoff_code_works_once(session):
    user = User(
        email="once@example.com", password_hash=hash_password(PASSWORD), email_verified_at=utcnow()
    )
    session.add(user)
    session.commit()
    client, binding = _browser()
    challenge = auth.sign_in_password(
        session=session, email=user.email, password=PASSWORD, browser_binding=binding
    )
    first = client.get(
        "/auth/session", params={"code": challenge.handoff_code}, follow_redirects=False
    )
    second = client.get(
        "/auth/session", params={"code": challenge.handoff_code}, follow_redirects=False
    )
    assert SESSION_COOKIE in first.headers.get("set-cookie", "")
    assert second.headers["location"].endswith("/sign-in?expired=1")
    assert SESSION_COOKIE not in second.headers.get("set-cookie", "")


def test_handoff_refuses_open_redirects(session):
    user = User(
        email="redirect@example.com",
        password_hash=hash_password(PASSWORD),
        email_verified_at=utcnow(),
    )
    session.add(user)
    session.commit()
    client, binding = _browser()
    challenge = auth.sign_in_password(
        session=session, email=user.email, password=PASSWORD, browser_binding=binding
    )
    response = client.get(
        "/auth/session",
        params={"code": challenge.handoff_code, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert "evil.example" not in response.headers["location"]


def test_a_cross_site_get_to_sign_out_does_not_end_a_live_session(session):
    client, user = _signed_in_client(session)
    token = client.cookies.get(SESSION_COOKIE)
    response = client.get("/auth/sign-out", follow_redirects=False)
    assert response.status_code == 303 and not response.headers["location"].endswith("/sign-in")
    assert "set-cookie" not in response.headers
    assert auth.session_resolve(session=session, token=token) is not None


def test_sign_out_clears_the_cookie_after_the_session_was_revoked(session):
    client, user = _signed_in_client(session)
    token = client.cookies.get(SESSION_COOKIE)
    _, user_session = auth.session_resolve(session=session, token=token)
    auth.session_revoke(session=session, user_id=user.id, session_id=user_session.id)
    response = client.get("/auth/sign-out", follow_redirects=False)
    assert response.headers["location"].endswith("/sign-in")
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    assert client.post("/auth/sign-out").status_code == 405


def _handoff_location(session, email: str, *, next_path: str | None = None) -> str:
    """Where `/auth/session` sends the browser after a password sign-in of `email`."""
    user = session.exec(select(User).where(User.email == email)).one()
    user.password_hash = hash_password(PASSWORD)
    session.add(user)
    session.commit()
    client, binding = _browser()
    challenge = auth.sign_in_password(
        session=session, email=email, password=PASSWORD, browser_binding=binding
    )
    params = {"code": challenge.handoff_code}
    if next_path is not None:
        params["next"] = next_path
    response = client.get("/auth/session", params=params, follow_redirects=False)
    assert response.status_code == 303 and SESSION_COOKIE in response.headers["set-cookie"]
    return response.headers["location"].removeprefix("http://localhost:3000")


def test_a_sign_in_that_asked_for_no_page_lands_in_the_studio_at_once(session):
    # Not through `/` (a page that loads, connects and only then sends the browser on): the
    # same rule as `/`, the Studio of the first organization by name.
    member = make_user(session, "lands@example.com")
    make_org(session, member, name="Zebra Works")
    acme = make_org(session, make_user(session, "boss@example.com"), name="Acme Works")
    orgs.membership_add(session=session, org_id=acme.id, user_id=member.id, role=OrgRole.editor)
    session.commit()
    assert _handoff_location(session, member.email) == "/org/acme-works/studio"
    assert _handoff_location(session, member.email, next_path="/") == "/org/acme-works/studio"


def test_a_sign_in_for_a_page_still_lands_on_that_page(session):
    owner = make_user(session, "asked@example.com")
    make_org(session, owner, name="Acme Works")
    location = _handoff_location(session, owner.email, next_path="/org/acme-works/billing")
    assert location == "/org/acme-works/billing"


@pytest.mark.parametrize("operator", [False, True])
def test_a_sign_in_without_an_organization_lands_on_index_which_knows_where_to_go(
    session, operator
):
    # `/` then sends platform staff to the console and anyone else to create an organization.
    user = make_user(session, "alone@example.com", operator=operator)
    assert _handoff_location(session, user.email) == routes.INDEX
