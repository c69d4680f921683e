"""How long a session lives: the decisions that must end the other sessions always do, and
the session list says where each session came from.

- A password change ends every other session (also sign-ins still waiting for their
  handoff), whatever the submitted form says: a missing, unticked or forged opt-out field
  changes nothing.
- Turning 2FA on (also moving it to a new app) ends every other session: one opened with the
  password alone must not outlive the decision to require more.
- A password reset ends every session and does not skip 2FA (kept from before).
- Settings > Security lists each session with its device, the IP address it signed in from
  and when it was created.

Handlers are called as the browser's websocket calls them (any form fields it likes).
"""

from __future__ import annotations

import asyncio
import re

import pytest
import reflex as rx
from argon2 import PasswordHasher
from reflex.istate.data import RouterData
from sqlmodel import Session

from core import crypto, routes
from services import auth as auth_service
from services import totp as totp_service
from services.mail import outbox_list
from state.settings import PASSWORD_CHANGED_MESSAGE, SecurityState
from state.sign_in import SignInState
from tests.factories import make_org, make_user, signed_in_cookie

PASSWORD = "velvet-harbor-kettle-92"
NEW_PASSWORD = "copper-meadow-lantern-57"
PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile"


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch):
    monkeypatch.setattr(
        crypto, "_password_hasher", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    )


def _tab(state_cls, path: str, cookie: str = "", *, ip: str = "", user_agent: str = ""):
    root = rx.State(_reflex_internal_init=True)
    headers = {"cookie": cookie, "origin": "http://localhost:3000"}
    if user_agent:
        headers["user-agent"] = user_agent
    router = RouterData.from_router_data(
        {
            "headers": headers,
            "pathname": path.partition("?")[0],
            "asPath": path,
            "query": {},
            "token": "sessions-tab",
            "sid": "sessions-sid",
            "ip": ip,
        }
    )
    stack = [root]
    while stack:
        current = stack.pop()
        current.router = router
        stack.extend(current.substates.values())
    return root._get_state_from_cache(state_cls)


def _call(state, name: str, *args):
    result = getattr(type(state), name).fn(state, *args)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


@pytest.fixture
def owner(session):
    user = make_user(session, "olivia@example.com", "Olivia Owner")
    user.password_hash = crypto.hash_password(PASSWORD)
    session.add(user)
    org = make_org(session, user)
    session.commit()
    return user, org


def _live(engine, cookie: str) -> bool:
    with Session(engine) as session:
        token = cookie.partition("=")[2]
        return auth_service.session_resolve(session=session, token=token) is not None


def _settings(session, owner_and_org, cookie=None):
    user, org = owner_and_org
    cookie = cookie or signed_in_cookie(session, user)
    page = _tab(SecurityState, f"/org/{org.slug}/settings", cookie)
    _call(page, "load")
    return page, cookie


@pytest.mark.parametrize(
    "opt_out",
    [
        {},
        {"end_other_sessions": ""},
        {"end_other_sessions": "off"},
        {"end_other_sessions": False},
        {"end_other_sessions": None},
        {"keep_sessions": True, "end_other_sessions": 0},
    ],
    ids=["omitted", "unticked", "off", "false", "null", "invented-field"],
)
def test_a_password_change_ends_every_other_session_whatever_the_form_says(
    session, engine, owner, opt_out
):
    user, _ = owner
    laptop = signed_in_cookie(session, user)
    phone = signed_in_cookie(session, user)
    pending = auth_service.sign_in_password(session=session, email=user.email, password=PASSWORD)
    page, here = _settings(session, owner)

    _call(
        page,
        "change_password",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            **opt_out,
        },
    )
    assert page.error == ""
    assert page.notice == PASSWORD_CHANGED_MESSAGE
    assert _live(engine, here)
    assert not _live(engine, laptop) and not _live(engine, phone)
    with Session(engine) as fresh, pytest.raises(Exception) as refused:
        auth_service.session_activate(session=fresh, handoff_code=pending.handoff_code)
    assert getattr(refused.value, "code", "") == "sign_in_expired"
    assert [row.current for row in page.sessions] == [True]


def test_the_settings_page_offers_no_opt_out_any_more():
    from creative_studio.pages.settings import _password_card

    rendered = str(_password_card().render())
    assert "end_other_sessions" not in rendered
    assert "signs out every other device" in rendered


def test_turning_2fa_on_ends_every_other_session(session, engine, owner):
    user, _ = owner
    laptop = signed_in_cookie(session, user)
    pending = auth_service.sign_in_password(session=session, email=user.email, password=PASSWORD)
    page, here = _settings(session, owner)
    _call(page, "start_enrolment")
    _call(page, "confirm_enrolment", {"code": totp_service.totp_current_code(page.enrolment_key)})
    assert page.error == "" and page.totp_enabled
    assert "Every other device and browser was signed out" in page.notice
    assert _live(engine, here) and not _live(engine, laptop)
    with Session(engine) as fresh, pytest.raises(Exception) as refused:
        auth_service.session_activate(session=fresh, handoff_code=pending.handoff_code)
    assert getattr(refused.value, "code", "") == "sign_in_expired"


def test_moving_2fa_to_a_new_app_ends_the_other_sessions_again(session, engine, owner):
    user, _ = owner
    page, here = _settings(session, owner)
    _call(page, "start_enrolment")
    first_secret = page.enrolment_key
    _call(page, "confirm_enrolment", {"code": totp_service.totp_current_code(first_secret)})
    # Later, a second device signs in with password and code.
    with Session(engine, expire_on_commit=False) as other:
        challenge = auth_service.sign_in_password(
            session=other, email=user.email, password=PASSWORD
        )
        codes = page.new_recovery_codes
        auth_service.sign_in_complete_mfa(
            session=other, handoff_code=challenge.handoff_code, code=codes[0]
        )
        token, _ = auth_service.session_activate(session=other, handoff_code=challenge.handoff_code)
        other.commit()
    tablet = f"{routes.SESSION_COOKIE}={token}"
    assert _live(engine, tablet)

    _call(page, "reconfigure_totp", {"password": PASSWORD})
    assert page.enrolling and page.enrolment_key != first_secret
    _call(page, "confirm_enrolment", {"code": totp_service.totp_current_code(page.enrolment_key)})
    assert page.error == ""
    assert _live(engine, here) and not _live(engine, tablet)


def test_a_password_reset_ends_every_session_and_still_asks_for_the_second_factor(
    session, engine, owner
):
    user, _ = owner
    page, here = _settings(session, owner)
    _call(page, "start_enrolment")
    secret = page.enrolment_key
    _call(page, "confirm_enrolment", {"code": totp_service.totp_current_code(secret)})
    with Session(engine) as own:
        auth_service.password_reset_request(session=own, email=user.email, base_url="http://x")
    with Session(engine) as own:
        body = outbox_list(session=own, limit=1)[0].body_text
    token = re.search(r"token=([\w-]+)", body).group(1)
    with Session(engine) as own:
        auth_service.password_reset_complete(session=own, token=token, new_password=NEW_PASSWORD)
    assert not _live(engine, here)
    with Session(engine) as own:
        challenge = auth_service.sign_in_password(
            session=own, email=user.email, password=NEW_PASSWORD
        )
        assert challenge.mfa_required
        with pytest.raises(Exception) as refused:
            auth_service.session_activate(session=own, handoff_code=challenge.handoff_code)
        assert getattr(refused.value, "code", "") == "totp_required"


def test_the_session_list_says_where_and_when_each_session_was_created(session, engine, owner):
    user, _ = owner
    # A sign-in from a phone, through the sign-in page as its websocket runs it.
    phone_tab = _tab(
        SignInState,
        routes.SIGN_IN,
        "cs_preauth=" + "q" * 43,
        ip="198.51.100.23",
        user_agent=PHONE,
    )
    _call(phone_tab, "reset_form")
    step = _call(phone_tab, "submit_password", {"email": user.email, "password": PASSWORD})
    assert phone_tab.error == ""
    code = re.search(r"/auth/session\?code=([\w-]+)", str(step)).group(1)
    with Session(engine) as own:  # what the /auth/session route then does for that phone
        _, phone_session = auth_service.session_activate(session=own, handoff_code=code)
        own.commit()
        created = phone_session.created_at

    page, _ = _settings(session, owner)
    rows = {row.ip_address: row for row in page.sessions}
    assert rows["198.51.100.23"].device == "Chrome on Android"
    assert rows["198.51.100.23"].created == created.strftime("%Y-%m-%d %H:%M UTC")
    assert [row.current for row in page.sessions].count(True) == 1

    from creative_studio.pages.settings import _sessions_card

    rendered = str(_sessions_card().render())
    for heading in ("Device", "IP address", "Created", "Last seen"):
        assert heading in rendered
