"""Settings > Security: sessions, password and 2FA of the signed-in person."""

from __future__ import annotations

import asyncio

import pytest
from argon2 import PasswordHasher
from sqlmodel import Session

from core import crypto
from models import User
from services import totp as totp_service
from state.org_page import NOT_FOUND_RELOAD
from state.settings import SecurityState, device_label
from tests.factories import make_org, make_user, signed_in_cookie

PASSWORD = "velvet-harbor-kettle-92"


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch):
    """Same argon2id, cheaper parameters."""
    monkeypatch.setattr(
        crypto, "_password_hasher", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    )


def _owner_with_password(session):
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    owner.password_hash = crypto.hash_password(PASSWORD)
    session.add(owner)
    org = make_org(session, owner)
    session.commit()
    return owner, org


def _security(session, page_state, user, org, cookie=None):
    cookie = cookie if cookie is not None else signed_in_cookie(session, user)
    session.commit()
    return page_state(SecurityState, cookie=cookie, path=f"/org/{org.slug}/settings")


def test_load_lists_sessions_with_this_device_marked(session, page_state, call):
    owner, org = _owner_with_password(session)
    signed_in_cookie(session, owner)  # another device
    security = _security(session, page_state, owner, org)

    asyncio.run(call(security, "load"))
    assert security.error == ""
    assert len(security.sessions) == 2
    assert [row.current for row in security.sessions].count(True) == 1
    assert security.totp_enabled is False and security.recovery_remaining == 0

    other = next(row for row in security.sessions if not row.current)
    asyncio.run(call(security, "end_session", str(other.id)))
    assert security.error == ""
    assert security.notice == "That session was signed out."
    assert [row.current for row in security.sessions] == [True]


def test_end_session_with_a_malformed_id_says_not_found(session, page_state, call):
    owner, org = _owner_with_password(session)
    security = _security(session, page_state, owner, org)
    asyncio.run(call(security, "load"))

    asyncio.run(call(security, "end_session", "abc"))
    assert security.error == NOT_FOUND_RELOAD
    assert security.notice == ""
    assert len(security.sessions) == 1


def test_another_persons_session_cannot_be_ended(session, page_state, call):
    owner, org = _owner_with_password(session)
    stranger = make_user(session, "sam@example.com")
    signed_in_cookie(session, stranger)
    session.commit()
    security = _security(session, page_state, owner, org)
    asyncio.run(call(security, "load"))
    own_ids = {row.id for row in security.sessions}
    foreign_id = max(own_ids) + 1

    asyncio.run(call(security, "end_session", foreign_id))
    assert security.error == (
        "That session was not found; it may have ended already. Refresh the list of sessions."
    )


def test_end_other_sessions_keeps_this_one(session, page_state, call):
    owner, org = _owner_with_password(session)
    signed_in_cookie(session, owner)
    signed_in_cookie(session, owner)
    security = _security(session, page_state, owner, org)
    asyncio.run(call(security, "load"))
    assert len(security.sessions) == 3

    asyncio.run(call(security, "end_other_sessions"))
    assert security.notice == "Every other session was signed out."
    assert [row.current for row in security.sessions] == [True]


def test_change_password_with_a_wrong_current_password_says_so(session, page_state, call, engine):
    owner, org = _owner_with_password(session)
    security = _security(session, page_state, owner, org)
    asyncio.run(call(security, "load"))
    new_password = "copper-meadow-lantern-57"

    asyncio.run(
        call(
            security,
            "change_password",
            {
                "current_password": "not-my-password-at-all",
                "new_password": new_password,
                "new_password_confirm": new_password,
            },
        )
    )
    assert security.error == (
        "Your current password is not correct, so the password was not changed. "
        "Try again, or sign out and use 'Forgot password'."
    )
    assert security.notice == ""
    with Session(engine) as fresh:
        assert crypto.verify_password(fresh.get(User, owner.id).password_hash, PASSWORD)


def test_change_password_needs_the_same_new_password_twice(session, page_state, call):
    owner, org = _owner_with_password(session)
    security = _security(session, page_state, owner, org)
    asyncio.run(
        call(
            security,
            "change_password",
            {
                "current_password": PASSWORD,
                "new_password": "copper-meadow-lantern-57",
                "new_password_confirm": "copper-meadow-lantern-58",
            },
        )
    )
    assert security.error == "The two new passwords differ. Type the same password in both fields."


@pytest.mark.parametrize(
    "opt_out",
    [{}, {"end_other_sessions": ""}, {"end_other_sessions": False}],
    ids=["field omitted", "box unticked", "false sent by a client"],
)
def test_change_password_always_signs_out_other_sessions(
    session, page_state, call, engine, opt_out
):
    owner, org = _owner_with_password(session)
    other_device = signed_in_cookie(session, owner)
    security = _security(session, page_state, owner, org)
    asyncio.run(call(security, "load"))
    assert len(security.sessions) == 2
    new_password = "copper-meadow-lantern-57"

    asyncio.run(
        call(
            security,
            "change_password",
            {
                "current_password": PASSWORD,
                "new_password": new_password,
                "new_password_confirm": new_password,
                **opt_out,
            },
        )
    )
    assert security.error == ""
    assert security.notice == (
        "Password changed. Every other device and browser was signed out; you stay signed in here."
    )
    assert [row.current for row in security.sessions] == [True]
    with Session(engine) as fresh:
        assert crypto.verify_password(fresh.get(User, owner.id).password_hash, new_password)
    # The other device's next page load finds itself signed out.
    elsewhere = page_state(SecurityState, cookie=other_device, path=f"/org/{org.slug}/settings")
    asyncio.run(call(elsewhere, "load"))
    assert elsewhere.error == "Your session has ended. Sign in again."


def test_turning_2fa_on_signs_out_the_other_devices(session, page_state, call):
    owner, org = _owner_with_password(session)
    other_device = signed_in_cookie(session, owner)
    security = _security(session, page_state, owner, org)
    asyncio.run(call(security, "load"))
    asyncio.run(call(security, "start_enrolment"))
    code = totp_service.totp_current_code(security.enrolment_key)
    asyncio.run(call(security, "confirm_enrolment", {"code": code}))
    assert security.error == ""
    assert "Every other device and browser was signed out" in security.notice
    assert [row.current for row in security.sessions] == [True]
    elsewhere = page_state(SecurityState, cookie=other_device, path=f"/org/{org.slug}/settings")
    asyncio.run(call(elsewhere, "load"))
    assert elsewhere.error == "Your session has ended. Sign in again."


def test_the_session_list_says_where_and_when_each_session_was_created(session, page_state, call):
    from sqlmodel import select

    from models import UserSession

    owner, org = _owner_with_password(session)
    phone = signed_in_cookie(session, owner)
    row = session.exec(select(UserSession).order_by(UserSession.id.desc())).first()
    row.ip_address = "203.0.113.7"
    row.user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"
    session.add(row)
    session.commit()
    security = _security(session, page_state, owner, org)
    asyncio.run(call(security, "load"))
    listed = next(item for item in security.sessions if item.id == row.id)
    assert listed.device == "Safari on iPhone"
    assert listed.ip_address == "203.0.113.7"
    assert listed.created == row.created_at.strftime("%Y-%m-%d %H:%M UTC")
    assert phone  # that device is still signed in


def test_two_factor_enrolment_shows_the_key_then_the_recovery_codes(session, page_state, call):
    owner, org = _owner_with_password(session)
    security = _security(session, page_state, owner, org)
    asyncio.run(call(security, "load"))

    asyncio.run(call(security, "start_enrolment"))
    assert security.enrolling and security.enrolment_key and "<svg" in security.enrolment_qr_svg

    asyncio.run(call(security, "confirm_enrolment", {"code": "000000"}))
    assert security.error != "" and security.enrolling  # a wrong code keeps the form open

    code = totp_service.totp_current_code(security.enrolment_key)
    asyncio.run(call(security, "confirm_enrolment", {"code": code}))
    assert security.error == ""
    assert security.notice.startswith("Two-factor authentication is on.")
    assert not security.enrolling and security.enrolment_key == ""
    assert len(security.new_recovery_codes) == 10
    assert security.totp_enabled and security.recovery_remaining == 10

    asyncio.run(call(security, "disable_totp", {"password": "wrong password"}))
    assert security.error.startswith("That password is not correct.")
    assert security.totp_enabled

    asyncio.run(call(security, "disable_totp", {"password": PASSWORD}))
    assert security.notice.startswith("Two-factor authentication is off.")
    assert not security.totp_enabled


def test_signed_out_tab_sees_no_sessions(session, page_state, call):
    _owner, org = _owner_with_password(session)
    security = page_state(SecurityState, cookie="", path=f"/org/{org.slug}/settings")
    asyncio.run(call(security, "load"))
    assert security.sessions == []
    assert security.error == "Your session has ended. Sign in again."

    asyncio.run(call(security, "end_other_sessions"))
    assert security.error == "Your session has ended. Sign in again."
    assert security.notice == ""


def test_device_label_names_browser_and_system():
    chrome_mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Chrome/120.0 Safari/537.36"
    assert device_label(chrome_mac) == "Chrome on macOS"
    assert device_label("") == "Browser"
