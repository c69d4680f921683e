"""The cookie routes: handoff sets an HttpOnly cookie once; sign-out never ends a live session by GET."""

from starlette.testclient import TestClient

from core.clock import utcnow
from core.crypto import hash_password
from core.routes import PREAUTH_COOKIE, SESSION_COOKIE
from creative_studio.api import build_api
from models import User
from services import auth

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
