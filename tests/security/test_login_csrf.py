"""Login CSRF: a sign-in completes only in the browser that started it.

The attack: someone signs in to their own account, stops before their browser follows the
handoff link (`/auth/session?code=...`, or Google's callback `/auth/google/callback?...`),
and gets another person to open it. Unbound, that person's browser would be signed in as the
attacker, and whatever they then type (a campaign brief, a card, an invitation) lands in the
attacker's account.

The defence (see `services.auth`): a random HttpOnly pre-auth cookie the sign-in page makes
sure of before it takes a password, whose hash is stored with the pending sign-in and with
the Google flow; `/auth/session` and the Google callback require the same cookie.

Here: the HTTP routes with two independent clients (two cookie jars), the sign-in page's
handlers as the websocket calls them, and, in a real browser, a second browser context as the
victim.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from argon2 import PasswordHasher
from reflex.istate.data import RouterData
from sqlmodel import Session, select
from starlette.testclient import TestClient

from core import crypto, routes
from core.clock import utcnow
from core.crypto import hash_password
from core.settings import reset_settings_cache
from creative_studio.api import build_api
from models import OAuthFlowState, User, UserSession
from services import auth as auth_service
from state.sign_in import COOKIES_REQUIRED_MESSAGE, SignInState
from tests.unit.test_google_oidc import (  # noqa: F401  (fixtures: a Google on loopback)
    BACKEND,
    _local,
    _query,
    _to_google,
    client,
    fake_google,
    google,
)

PASSWORD = "copper-lantern-river-9"
OTHER_BROWSER = "This sign-in was started in another browser. Sign in again here."


def _router(cookie: str, path: str) -> RouterData:
    """What the websocket carries for a tab on `path` with this Cookie header."""
    return RouterData.from_router_data(
        {
            "headers": {"cookie": cookie, "origin": "http://localhost:3000"},
            "pathname": path.partition("?")[0],
            "asPath": path,
            "query": {},
            "token": "identity-tab",
            "sid": "identity-sid",
        }
    )


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch):
    monkeypatch.setattr(
        crypto, "_password_hasher", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    )


def _user(session, email: str) -> User:
    user = User(
        email=email,
        name=email.split("@")[0],
        password_hash=hash_password(PASSWORD),
        email_verified_at=utcnow(),
    )
    session.add(user)
    session.commit()
    return user


def _browser(base_url: str = "http://localhost") -> tuple[TestClient, str]:
    """A browser that opened the sign-in page: it holds its own pre-auth cookie."""
    browser = TestClient(build_api(), base_url=base_url, follow_redirects=False)
    assert browser.get(routes.API_SIGN_IN_START).status_code == 303
    return browser, browser.cookies[auth_service.browser_binding_cookie().name]


def _signed_in_as(browser: TestClient, session) -> str | None:
    token = browser.cookies.get(routes.SESSION_COOKIE)
    if not token:
        return None
    resolved = auth_service.session_resolve(session=session, token=token)
    return resolved[0].email if resolved else None


# --- the password sign-in's handoff -----------------------------------------------------------


def test_an_attackers_handoff_link_does_not_sign_in_the_victims_browser(session):
    _user(session, "mallory@example.com")
    attacker, attacker_binding = _browser()
    challenge = auth_service.sign_in_password(
        session=session,
        email="mallory@example.com",
        password=PASSWORD,
        browser_binding=attacker_binding,
    )
    link = f"{routes.API_AUTH_SESSION}?code={challenge.handoff_code}&next=/org/x/studio"

    for victim in (  # a browser that never saw the app, and one with a pre-auth cookie of its own
        TestClient(build_api(), base_url="http://localhost", follow_redirects=False),
        _browser()[0],
    ):
        refused = victim.get(link)
        assert refused.status_code == 303
        assert refused.headers["location"].endswith("/sign-in?error=sign_in_other_browser")
        assert routes.SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        assert _signed_in_as(victim, session) is None
        # The victim can now sign in as themselves: this browser holds a pre-auth cookie.
        assert victim.cookies.get(auth_service.browser_binding_cookie().name)

    # The attacker's own browser still completes its own sign-in: nothing was used up.
    accepted = attacker.get(link)
    assert accepted.headers["location"].endswith("/org/x/studio")
    assert _signed_in_as(attacker, session) == "mallory@example.com"


def test_a_sign_in_started_without_a_browser_cannot_be_finished_by_any_browser(session):
    _user(session, "ana@example.com")
    browser, _ = _browser()
    unbound = auth_service.sign_in_password(
        session=session, email="ana@example.com", password=PASSWORD
    )
    response = browser.get(routes.API_AUTH_SESSION, params={"code": unbound.handoff_code})
    assert response.headers["location"].endswith("/sign-in?error=sign_in_other_browser")
    assert _signed_in_as(browser, session) is None


def test_a_forged_pre_auth_cookie_does_not_help(session):
    _user(session, "mallory@example.com")
    _, attacker_binding = _browser()
    challenge = auth_service.sign_in_password(
        session=session,
        email="mallory@example.com",
        password=PASSWORD,
        browser_binding=attacker_binding,
    )
    victim = TestClient(build_api(), base_url="http://localhost", follow_redirects=False)
    name = auth_service.browser_binding_cookie().name
    for forged in ("", "x", attacker_binding[:-1] + "A", crypto.hash_token(attacker_binding)):
        victim.cookies.set(name, forged)
        refused = victim.get(routes.API_AUTH_SESSION, params={"code": challenge.handoff_code})
        assert refused.headers["location"].endswith("/sign-in?error=sign_in_other_browser")
    assert _signed_in_as(victim, session) is None


def test_the_pre_auth_cookie_is_httponly_lax_and_host_only_secure_over_https(monkeypatch):
    response = TestClient(build_api(), base_url="http://localhost").get(
        routes.API_SIGN_IN_START, follow_redirects=False
    )
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("cs_preauth=") and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie and "Path=/" in cookie and "Domain" not in cookie
    assert len(response.cookies["cs_preauth"]) >= 43  # 256 random bits

    monkeypatch.setenv("API_BASE_URL", "https://studio.example.test")
    reset_settings_cache()
    secure = TestClient(build_api(), base_url="https://studio.example.test").get(
        routes.API_SIGN_IN_START, follow_redirects=False
    )
    cookie = secure.headers["set-cookie"]
    # __Host-: only this host may set it, so a sibling subdomain cannot plant a known value.
    assert cookie.startswith("__Host-cs_preauth=") and "Secure" in cookie
    assert "HttpOnly" in cookie and "Domain" not in cookie


def test_the_pre_auth_cookie_is_never_replaced_once_set():
    browser, binding = _browser()
    again = browser.get(routes.API_SIGN_IN_START)
    assert "set-cookie" not in again.headers  # another tab mid sign-in keeps working
    assert browser.cookies[auth_service.browser_binding_cookie().name] == binding


# --- the sign-in page, as its websocket events run ----------------------------------------------


def _sign_in_tab(cookie: str, path: str = routes.SIGN_IN) -> SignInState:
    import reflex as rx

    root = rx.State(_reflex_internal_init=True)
    router = _router(cookie, path)
    stack = [root]
    while stack:
        current = stack.pop()
        current.router = router
        stack.extend(current.substates.values())
    return root._get_state_from_cache(SignInState)


def _run(state: SignInState, name: str, *args):
    return getattr(type(state), name).fn(state, *args)


def test_the_password_form_waits_for_the_pre_auth_cookie(engine):
    tab = _sign_in_tab("", routes.SIGN_IN + "?next=/org/acme/billing")
    step = _run(tab, "reset_form")
    assert not tab.browser_ready
    # One round trip through the route that sets the cookie, keeping where to go next.
    assert "/auth/sign-in?next=%2Forg%2Facme%2Fbilling" in str(step)

    tab = _sign_in_tab("cs_preauth=" + "b" * 43, routes.SIGN_IN + "?browser=1")
    assert _run(tab, "reset_form") is None
    assert tab.browser_ready and tab.error == ""


def test_a_browser_that_refuses_cookies_is_told_so_instead_of_looping(engine):
    tab = _sign_in_tab("", routes.SIGN_IN + "?browser=1")
    assert _run(tab, "reset_form") is None
    assert not tab.browser_ready
    assert (tab.error_code, tab.error) == ("cookies_required", COOKIES_REQUIRED_MESSAGE)


def test_the_other_browser_refusal_reads_plainly_on_the_sign_in_page(engine):
    tab = _sign_in_tab("cs_preauth=" + "b" * 43, routes.SIGN_IN + "?error=sign_in_other_browser")
    _run(tab, "reset_form")
    assert tab.browser_ready
    assert tab.error == OTHER_BROWSER


def test_a_password_sign_in_is_stored_bound_to_the_cookie_its_websocket_carried(session):
    _user(session, "ana@example.com")
    binding = "c" * 43
    tab = _sign_in_tab(f"other=1; cs_preauth={binding}")
    _run(tab, "reset_form")
    step = _run(tab, "submit_password", {"email": "ana@example.com", "password": PASSWORD})
    assert tab.error == "" and "/auth/session?code=" in str(step)
    row = session.exec(select(UserSession)).one()
    assert row.browser_binding_hash == crypto.hash_token(binding)

    # Without the cookie (it went away after the page loaded) no password is checked at all.
    bare = _sign_in_tab("")
    bare.browser_ready = True
    step = _run(bare, "submit_password", {"email": "ana@example.com", "password": "wrong-one-12"})
    assert "/auth/sign-in" in str(step)
    assert session.get(User, row.user_id).failed_sign_in_count == 0


# --- Google sign-in -----------------------------------------------------------------------------


def test_google_callback_in_another_browser_signs_nobody_in(client, google, engine):  # noqa: F811
    callback = _to_google(client)  # the attacker's browser went to Google and back
    with Session(engine) as session:
        flow = session.exec(select(OAuthFlowState)).one()
        assert flow.browser_binding_hash == crypto.hash_token(
            client.cookies[auth_service.browser_binding_cookie().name]
        )

    victim = TestClient(build_api(), base_url=BACKEND, follow_redirects=False)
    refused = victim.get(_local(callback))
    assert refused.status_code == 303
    assert _query(refused.headers["location"])["error"] == "sign_in_other_browser"
    assert google.token_requests == []  # refused before the code was even redeemed
    with Session(engine) as session:
        assert session.exec(select(User)).all() == []
        assert session.exec(select(UserSession)).all() == []

    # In the attacker's own browser the same callback still works, and binds the handoff.
    handoff = client.get(_local(callback)).headers["location"]
    assert handoff.startswith(BACKEND + routes.API_AUTH_SESSION)
    assert "error=sign_in_other_browser" in victim.get(_local(handoff)).headers["location"]
    activated = client.get(_local(handoff))
    assert routes.SESSION_COOKIE in activated.cookies


def test_google_start_gives_the_browser_a_cookie(client, google, engine):  # noqa: F811
    start = client.get("/auth/google/start", params={"next": "/"})
    name = auth_service.browser_binding_cookie().name
    assert name in start.headers["set-cookie"] and "HttpOnly" in start.headers["set-cookie"]
    again = client.get("/auth/google/start", params={"next": "/"})
    assert "set-cookie" not in again.headers  # reused, not replaced


# --- in a real browser: a second browser context is the victim ----------------------------------

# app_server and browser: the live app and Chromium from tests/live_app.py (shared fixtures).


@pytest.mark.browser
def test_in_a_real_browser_the_victim_opening_the_attackers_link_stays_signed_out(
    app_server, browser
):
    from playwright.sync_api import expect

    from tests.browser.conftest import screenshot

    app_server.run_python(
        "from sqlmodel import Session\nfrom core.clock import utcnow\n"
        "from core.crypto import hash_password\nfrom core.db import get_engine\n"
        "from models import User\n"
        "with Session(get_engine()) as s:\n"
        f"    s.add(User(email='mallory@example.com', name='Mallory', "
        f"password_hash=hash_password({PASSWORD!r}), email_verified_at=utcnow()))\n"
        "    s.commit()\n"
    )
    attacker_context = browser.new_context()
    victim_context = browser.new_context()
    try:
        attacker = attacker_context.new_page()
        captured: list[str] = []

        def _keep_the_link(route):  # the attacker stops before following their own link
            captured.append(route.request.url)
            route.abort()

        attacker.route(re.compile(r".*/auth/session\?.*"), _keep_the_link)
        attacker.goto(app_server.base_url + "/sign-in")
        attacker.get_by_label("Email").fill("mallory@example.com")
        attacker.get_by_label("Password").fill(PASSWORD)
        attacker.get_by_role("button", name="Sign in").click()
        deadline = 60_000
        while not captured and deadline > 0:
            attacker.wait_for_timeout(250)
            deadline -= 250
        assert captured, "the sign-in never tried to open its handoff link"
        link = captured[0]
        assert parse_qs(urlsplit(link).query)["code"][0]

        victim = victim_context.new_page()
        victim.goto(link)
        expect(victim).to_have_url(re.compile(r"/sign-in"))
        expect(victim.get_by_role("alert")).to_contain_text(OTHER_BROWSER)
        screenshot(victim, "login-csrf-victim-refused")
        assert not [c for c in victim_context.cookies() if c["name"] == routes.SESSION_COOKIE]
        preauth = [c for c in victim_context.cookies() if c["name"] == "cs_preauth"]
        assert preauth and preauth[0]["httpOnly"] and preauth[0]["sameSite"] == "Lax"
        # The victim's browser can sign in to the victim's own account from here.
        expect(victim.get_by_label("Email")).to_be_visible()

        # The link still works in the browser that started it (only there). The sign-in page
        # whose navigation was stopped is left first: a retry of that navigation once the route
        # is gone would use the one-time code before the attacker opens it below.
        attacker.goto("about:blank")
        attacker.unroute(re.compile(r".*/auth/session\?.*"))
        attacker.goto(link)
        expect(attacker).to_have_url(re.compile(r"/orgs/new$"))
    finally:
        attacker_context.close()
        victim_context.close()
