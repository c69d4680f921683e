"""Registration, email links, password reset/change, lockout (services/auth.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher, extract_parameters
from sqlmodel import select

from core import clock, crypto
from core.crypto import hash_token, verify_password
from models import AuditLogEntry, EmailToken, User, UserSession
from services.auth import (
    INVALID_CREDENTIALS_MESSAGE,
    REGISTRATION_ATTEMPT_SUBJECT,
    background_work_wait,
    email_verify,
    password_change,
    password_reset_complete,
    password_reset_request,
    password_reset_request_later,
    require_verified_email,
    session_activate,
    session_resolve,
    sign_in_password,
    user_register,
    verification_resend,
)
from services.errors import DomainError
from services.mail import outbox_list

BASE_URL = "https://studio.example.test"
PASSWORD = "velvet-harbor-kettle-92"
NEW_PASSWORD = "copper-meadow-violin-37"
START = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch):
    """Same argon2id, cheaper parameters: these tests hash passwords many times."""
    monkeypatch.setattr(
        crypto, "_password_hasher", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    )


@pytest.fixture(autouse=True)
def _frozen_clock():
    clock.freeze(START)


def _advance(**delta) -> None:
    clock.freeze(clock.utcnow() + timedelta(**delta))


def _register(session, email="ana@example.com", password=PASSWORD, name="Ana") -> User:
    return user_register(
        session=session, email=email, password=password, name=name, base_url=BASE_URL
    )


def _link_tokens(session, to: str, path: str) -> list[str]:
    """Tokens of the links mailed to `to` for `path`, newest first."""
    pattern = re.compile(re.escape(f"{BASE_URL}/{path}?token=") + r"([A-Za-z0-9_-]+)")
    return [
        match.group(1)
        for mail in outbox_list(session=session, limit=100)
        if mail.to_address == to and (match := pattern.search(mail.body_text))
    ]


def _error(callable_, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as caught:
        callable_(**kwargs)
    return caught.value


def _signed_in(session, email="ana@example.com", password=PASSWORD) -> tuple[str, UserSession]:
    challenge = sign_in_password(session=session, email=email, password=password)
    return session_activate(session=session, handoff_code=challenge.handoff_code)


# --- registration ------------------------------------------------------------------------------


def test_register_normalizes_email_hashes_password_and_mails_a_verification_link(session):
    user = _register(session, email="  Ana@Example.COM ", name=" Ana ")
    assert user.id is not None and user.email == "ana@example.com" and user.name == "Ana"
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, PASSWORD)
    assert user.email_verified_at is None
    [token] = _link_tokens(session, "ana@example.com", "verify-email")
    [row] = session.exec(select(EmailToken)).all()
    assert row.purpose == "verify_email" and row.token_hash == hash_token(token)
    assert token not in row.token_hash  # only the hash is stored
    assert clock.as_utc(row.expires_at) == START + timedelta(hours=24)


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@example.com", "sp ace@example.com"])
def test_register_refuses_an_invalid_email(session, email):
    error = _error(_register, session=session, email=email)
    assert error.code == "invalid_email" and error.details["field"] == "email"
    assert "name@example.com" in error.message


def test_a_taken_address_is_answered_like_a_free_one_and_its_owner_is_told(session):
    owner = _register(session)
    password_hash = owner.password_hash
    [owner_link] = _link_tokens(session, owner.email, "verify-email")

    assert _register(session, email="ANA@example.com", password=NEW_PASSWORD, name="Eve") is None

    assert len(session.exec(select(User)).all()) == 1  # nothing new, nothing changed
    stored = session.get(User, owner.id)
    assert stored.password_hash == password_hash and stored.name == "Ana"
    assert _link_tokens(session, owner.email, "verify-email") == [owner_link]  # still valid
    newest = outbox_list(session=session, limit=1)[0]
    assert newest.to_address == "ana@example.com"
    assert newest.subject == REGISTRATION_ATTEMPT_SUBJECT
    assert "no new account was created" in newest.body_text
    assert f"{BASE_URL}/forgot-password" in newest.body_text and "token=" not in newest.body_text

    # Someone hammering the form does not flood the owner's inbox: one mail a minute.
    sent = len(outbox_list(session=session))
    assert _register(session, email="ana@example.com") is None
    assert len(outbox_list(session=session)) == sent
    _advance(seconds=61)
    assert _register(session, email="ana@example.com") is None
    assert len(outbox_list(session=session)) == sent + 1


def test_a_taken_address_still_gets_the_form_checks_first(session):
    _register(session)
    error = _error(_register, session=session, email="ana@example.com", password="short")
    assert error.code == "weak_password"  # the same refusal a free address would get


def test_register_applies_the_password_policy(session):
    error = _error(_register, session=session, password="password1234")
    assert error.code == "weak_password" and error.details["rule"] == "common"
    assert session.exec(select(User)).all() == []


# --- email verification ------------------------------------------------------------------------


def test_verification_link_verifies_once(session):
    user = _register(session)
    [token] = _link_tokens(session, user.email, "verify-email")
    verified = email_verify(session=session, token=token)
    assert verified.id == user.id and clock.as_utc(verified.email_verified_at) == START
    error = _error(email_verify, session=session, token=token)
    assert error.code == "link_used"
    assert "already been used" in error.message and "new verification email" in error.message


def test_verification_link_expires_after_24_hours(session):
    user = _register(session)
    [token] = _link_tokens(session, user.email, "verify-email")
    _advance(hours=24, seconds=1)
    error = _error(email_verify, session=session, token=token)
    assert error.code == "link_expired"
    assert "expired" in error.message and "new verification email" in error.message


def test_unknown_verification_link_is_invalid(session):
    _register(session)
    for token in ["", "made-up-token"]:
        error = _error(email_verify, session=session, token=token)
        assert error.code == "link_invalid" and "new verification email" in error.message


def test_resend_replaces_the_previous_link(session):
    user = _register(session)
    [old_token] = _link_tokens(session, user.email, "verify-email")
    _advance(seconds=61)
    verification_resend(session=session, email=" ANA@example.com", base_url=BASE_URL)
    new_token, _ = _link_tokens(session, user.email, "verify-email")
    assert new_token != old_token
    assert _error(email_verify, session=session, token=old_token).code == "link_invalid"
    assert email_verify(session=session, token=new_token).email_verified_at is not None


def test_resend_answers_the_same_for_unknown_and_verified_accounts(session):
    user = _register(session)
    [token] = _link_tokens(session, user.email, "verify-email")
    email_verify(session=session, token=token)
    before = len(outbox_list(session=session))
    assert (
        verification_resend(session=session, email="nobody@example.com", base_url=BASE_URL) is None
    )
    assert verification_resend(session=session, email=user.email, base_url=BASE_URL) is None
    assert len(outbox_list(session=session)) == before


def test_require_verified_email(session):
    user = _register(session)
    error = _error(require_verified_email, user=user)
    assert error.code == "email_not_verified" and user.email in error.message
    [token] = _link_tokens(session, user.email, "verify-email")
    require_verified_email(email_verify(session=session, token=token))


def test_sign_in_does_not_need_a_verified_email(session):
    _register(session)
    token, _ = _signed_in(session)
    assert session_resolve(session=session, token=token) is not None


# --- password reset ----------------------------------------------------------------------------


def test_reset_request_answers_the_same_for_an_unknown_email(session):
    assert (
        password_reset_request(session=session, email="ghost@example.com", base_url=BASE_URL)
        is None
    )
    assert outbox_list(session=session) == []


def test_a_reset_requested_later_is_done_off_the_request_path(session, engine):
    user = _register(session)
    before = len(outbox_list(session=session))
    session.commit()  # end this test's read (SQLite: BEGIN IMMEDIATE holds the write lock)
    for email in ("ghost@example.com", " Ana@example.com"):
        password_reset_request_later(email=email, base_url=BASE_URL)
    background_work_wait()
    assert len(outbox_list(session=session)) == before + 1
    [token] = _link_tokens(session, user.email, "reset-password")
    password_reset_complete(session=session, token=token, new_password=NEW_PASSWORD)


def test_reset_sets_the_password_revokes_sessions_and_clears_the_lockout(session):
    user = _register(session)
    token_a, _ = _signed_in(session)
    token_b, _ = _signed_in(session)
    for _ in range(5):
        _error(sign_in_password, session=session, email=user.email, password="wrong-password-123")
    password_reset_request(session=session, email="Ana@example.com", base_url=BASE_URL + "/")
    [reset_token] = _link_tokens(session, user.email, "reset-password")

    password_reset_complete(session=session, token=reset_token, new_password=NEW_PASSWORD)

    session.refresh(user)
    assert user.failed_sign_in_count == 0 and user.locked_until is None
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert user.email_verified_at is not None  # the link proved the address
    assert session_resolve(session=session, token=token_a) is None
    assert session_resolve(session=session, token=token_b) is None
    assert _signed_in(session, password=NEW_PASSWORD)[0]
    audit = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "auth.password_reset")
    ).one()
    assert audit.actor_user_id == user.id and audit.details["sessions_revoked"] == 2


def test_reset_link_is_single_use(session):
    user = _register(session)
    password_reset_request(session=session, email=user.email, base_url=BASE_URL)
    [token] = _link_tokens(session, user.email, "reset-password")
    password_reset_complete(session=session, token=token, new_password=NEW_PASSWORD)
    error = _error(
        password_reset_complete, session=session, token=token, new_password="another-fine-pass-77"
    )
    assert error.code == "link_used" and "Forgot password" in error.message


def test_reset_link_expires_after_one_hour(session):
    user = _register(session)
    password_reset_request(session=session, email=user.email, base_url=BASE_URL)
    [token] = _link_tokens(session, user.email, "reset-password")
    _advance(minutes=60, seconds=1)
    error = _error(password_reset_complete, session=session, token=token, new_password=NEW_PASSWORD)
    assert error.code == "link_expired" and "Forgot password" in error.message


def test_a_new_reset_request_kills_the_older_link(session):
    user = _register(session)
    password_reset_request(session=session, email=user.email, base_url=BASE_URL)
    _advance(seconds=61)
    password_reset_request(session=session, email=user.email, base_url=BASE_URL)
    newest, older = _link_tokens(session, user.email, "reset-password")
    error = _error(password_reset_complete, session=session, token=older, new_password=NEW_PASSWORD)
    assert error.code == "link_invalid"
    password_reset_complete(session=session, token=newest, new_password=NEW_PASSWORD)


def test_a_weak_new_password_does_not_use_up_the_reset_link(session):
    user = _register(session)
    password_reset_request(session=session, email=user.email, base_url=BASE_URL)
    [token] = _link_tokens(session, user.email, "reset-password")
    error = _error(
        password_reset_complete, session=session, token=token, new_password="ana@example.com!!"
    )
    assert error.code == "weak_password" and error.details["rule"] == "contains_email"
    password_reset_complete(session=session, token=token, new_password=NEW_PASSWORD)


def test_a_verification_token_is_not_a_reset_token(session):
    user = _register(session)
    [token] = _link_tokens(session, user.email, "verify-email")
    error = _error(password_reset_complete, session=session, token=token, new_password=NEW_PASSWORD)
    assert error.code == "link_invalid"


# --- password change ---------------------------------------------------------------------------


def test_change_password_always_ends_the_other_sessions(session):
    user = _register(session)
    current_token, current = _signed_in(session)
    other_token, _ = _signed_in(session)
    pending = sign_in_password(session=session, email=user.email, password=PASSWORD)
    password_change(
        session=session,
        user_id=user.id,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        current_session_id=current.id,
    )
    assert session_resolve(session=session, token=current_token) is not None
    assert session_resolve(session=session, token=other_token) is None
    # A sign-in that was waiting for its handoff (someone who knew the old password) ends too.
    error = _error(session_activate, session=session, handoff_code=pending.handoff_code)
    assert error.code == "sign_in_expired"
    assert verify_password(session.get(User, user.id).password_hash, NEW_PASSWORD)
    audit = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "auth.password_changed")
    ).one()
    assert audit.details == {"other_sessions_revoked": 2}


def test_change_password_offers_no_way_to_keep_the_other_sessions(session):
    user = _register(session)
    other_token, _ = _signed_in(session)
    with pytest.raises(TypeError):
        password_change(  # the old opt-out is gone, not ignored
            session=session,
            user_id=user.id,
            current_password=PASSWORD,
            new_password=NEW_PASSWORD,
            end_other_sessions=False,
            current_session_id=None,
        )
    password_change(
        session=session,
        user_id=user.id,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        current_session_id=None,
    )
    assert session_resolve(session=session, token=other_token) is None


def test_change_password_refuses_a_wrong_current_password_a_weak_or_the_same_one(session):
    user = _register(session)
    common = dict(session=session, user_id=user.id, current_session_id=None)
    error = _error(
        password_change, current_password="not-my-password-1", new_password=NEW_PASSWORD, **common
    )
    assert (
        error.code == "invalid_credentials" and "current password is not correct" in error.message
    )
    error = _error(password_change, current_password=PASSWORD, new_password="short", **common)
    assert error.code == "weak_password" and error.details["rule"] == "too_short"
    error = _error(password_change, current_password=PASSWORD, new_password=PASSWORD, **common)
    assert error.code == "password_unchanged"
    assert verify_password(session.get(User, user.id).password_hash, PASSWORD)


# --- lockout -----------------------------------------------------------------------------------


def test_unknown_email_and_wrong_password_give_the_same_error(session):
    _register(session)
    unknown = _error(
        sign_in_password, session=session, email="nobody@example.com", password=PASSWORD
    )
    wrong = _error(
        sign_in_password, session=session, email="ana@example.com", password="wrong-password-123"
    )
    assert unknown.code == wrong.code == "invalid_credentials"
    assert unknown.message == wrong.message == INVALID_CREDENTIALS_MESSAGE


def test_five_failures_lock_the_account_for_15_minutes(session):
    user = _register(session)
    for attempt in range(1, 5):
        error = _error(
            sign_in_password, session=session, email=user.email, password="wrong-password-123"
        )
        assert error.code == "invalid_credentials"
        assert session.get(User, user.id).failed_sign_in_count == attempt
    fifth = _error(
        sign_in_password, session=session, email=user.email, password="wrong-password-123"
    )
    assert fifth.code == "account_locked"
    assert (
        fifth.message
        == "Too many failed sign-ins. Try again in 15 minutes, or reset your password."
    )

    # Even the right password is refused while locked, and the message counts down.
    _advance(minutes=1)
    locked = _error(sign_in_password, session=session, email=user.email, password=PASSWORD)
    assert locked.code == "account_locked" and locked.details["minutes_left"] == 14
    assert (
        locked.message
        == "Too many failed sign-ins. Try again in 14 minutes, or reset your password."
    )
    _advance(minutes=13, seconds=30)
    assert (
        "Try again in 1 minute,"
        in _error(sign_in_password, session=session, email=user.email, password=PASSWORD).message
    )

    _advance(seconds=31)  # 15 minutes after the lock
    assert sign_in_password(session=session, email=user.email, password=PASSWORD).handoff_code
    stored = session.get(User, user.id)
    assert stored.failed_sign_in_count == 0 and stored.locked_until is None


def test_after_a_lock_expires_counting_starts_afresh(session):
    user = _register(session)
    for _ in range(5):
        _error(sign_in_password, session=session, email=user.email, password="wrong-password-123")
    _advance(minutes=16)
    error = _error(
        sign_in_password, session=session, email=user.email, password="wrong-password-123"
    )
    assert error.code == "invalid_credentials"
    assert session.get(User, user.id).failed_sign_in_count == 1


def test_a_successful_sign_in_resets_the_counter(session):
    user = _register(session)
    for _ in range(4):
        _error(sign_in_password, session=session, email=user.email, password="wrong-password-123")
    sign_in_password(session=session, email=user.email, password=PASSWORD)
    assert session.get(User, user.id).failed_sign_in_count == 0
    for _ in range(4):
        _error(sign_in_password, session=session, email=user.email, password="wrong-password-123")
    assert session.get(User, user.id).locked_until is None


def test_an_unknown_email_locks_exactly_like_an_account(session):
    user = _register(session)
    answers = {}
    for email in (user.email, "ghost@example.com"):
        answers[email] = [
            (error.code, error.message)
            for error in (
                _error(sign_in_password, session=session, email=email, password="wrong-pass-123")
                for _ in range(6)
            )
        ]
    assert answers[user.email] == answers["ghost@example.com"]
    assert [code for code, _ in answers["ghost@example.com"]] == ["invalid_credentials"] * 4 + [
        "account_locked"
    ] * 2
    _advance(minutes=15)
    assert (
        _error(sign_in_password, session=session, email="Ghost@Example.com", password=PASSWORD).code
        == "invalid_credentials"
    )  # the lock ran out, counting starts afresh


def test_failures_of_unknown_addresses_never_touch_an_account(session):
    user = _register(session)
    for _ in range(10):
        _error(sign_in_password, session=session, email="ana@example.co", password=PASSWORD)
    assert session.get(User, user.id).failed_sign_in_count == 0
    assert sign_in_password(session=session, email=user.email, password=PASSWORD).handoff_code


def test_an_account_without_a_password_cannot_sign_in_with_one(session):
    user = User(email="google@example.com", name="G", password_hash=None)
    session.add(user)
    session.commit()
    error = _error(sign_in_password, session=session, email=user.email, password=PASSWORD)
    assert error.code == "invalid_credentials"


def test_an_unknown_email_still_costs_a_password_verification(session, monkeypatch):
    import services.auth as auth

    calls: list[str] = []

    def counting_verify(password_hash, password):
        calls.append(password_hash)
        return verify_password(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting_verify)
    _error(sign_in_password, session=session, email="ghost@example.com", password=PASSWORD)
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")  # a real hash, not a shortcut


def test_sign_in_upgrades_a_hash_made_with_older_parameters(session):
    user = _register(session)
    user.password_hash = PasswordHasher(time_cost=2, memory_cost=4096, parallelism=1).hash(PASSWORD)
    session.add(user)
    session.commit()
    sign_in_password(session=session, email=user.email, password=PASSWORD)
    upgraded = session.get(User, user.id).password_hash
    assert not crypto.password_needs_rehash(upgraded) and verify_password(upgraded, PASSWORD)


# OWASP Password Storage Cheat Sheet, argon2id: each row is an equally strong minimum.
OWASP_ARGON2ID_MINIMUMS = [  # (memory KiB, iterations, parallelism)
    (47104, 1, 1),
    (19456, 2, 1),
    (12288, 3, 1),
    (9216, 4, 1),
    (7168, 5, 1),
]
PREVIOUS_PROFILE = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4)


def _production_argon2(monkeypatch) -> None:
    monkeypatch.setattr(
        crypto,
        "_password_hasher",
        PasswordHasher(
            time_cost=crypto.PASSWORD_TIME_COST,
            memory_cost=crypto.PASSWORD_MEMORY_COST_KIB,
            parallelism=crypto.PASSWORD_PARALLELISM,
        ),
    )


def _profile(password_hash: str) -> tuple[int, int, int]:
    parameters = extract_parameters(password_hash)
    return parameters.memory_cost, parameters.time_cost, parameters.parallelism


def test_password_hashing_stays_at_or_above_an_owasp_minimum():
    memory, iterations, lanes = (
        crypto.PASSWORD_MEMORY_COST_KIB,
        crypto.PASSWORD_TIME_COST,
        crypto.PASSWORD_PARALLELISM,
    )
    assert any(
        memory >= min_memory and iterations >= min_iterations and lanes >= min_lanes
        for min_memory, min_iterations, min_lanes in OWASP_ARGON2ID_MINIMUMS
    )


def test_a_hash_of_the_previous_profile_is_upgraded_on_the_next_sign_in_only(session, monkeypatch):
    _production_argon2(monkeypatch)
    user = _register(session)
    old_hash = PREVIOUS_PROFILE.hash(PASSWORD)
    user.password_hash = old_hash
    session.add(user)
    session.commit()
    assert crypto.password_needs_rehash(old_hash)

    _error(sign_in_password, session=session, email=user.email, password="not-the-password-1")
    assert session.get(User, user.id).password_hash == old_hash  # a refusal changes nothing

    sign_in_password(session=session, email=user.email, password=PASSWORD)
    upgraded = session.get(User, user.id).password_hash
    assert _profile(upgraded) == (
        crypto.PASSWORD_MEMORY_COST_KIB,
        crypto.PASSWORD_TIME_COST,
        crypto.PASSWORD_PARALLELISM,
    )
    assert not crypto.password_needs_rehash(upgraded) and verify_password(upgraded, PASSWORD)
    sign_in_password(session=session, email=user.email, password=PASSWORD)
    assert session.get(User, user.id).password_hash == upgraded  # upgraded once


@pytest.mark.parametrize("account", ["unknown", "current hash", "previous-profile hash"])
def test_a_refused_password_costs_the_same_work_for_any_address(session, monkeypatch, account):
    # One verification under the current parameters and one under the previous ones, so the
    # time of a refusal tells nothing about whether the address has an (older) account.
    import services.auth as auth

    auth._dummy_password_hash.cache_clear()  # made under this test's parameters
    verified: list[tuple[int, int, int]] = []

    def recording_verify(password_hash, password):
        verified.append(_profile(password_hash))
        return verify_password(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", recording_verify)
    monkeypatch.setattr(crypto, "verify_password", recording_verify)
    email = "ghost@example.com"
    if account != "unknown":
        user = _register(session)
        email = user.email
        if account == "previous-profile hash":
            user.password_hash = PREVIOUS_PROFILE.hash(PASSWORD)
            session.add(user)
            session.commit()
    verified.clear()
    _error(sign_in_password, session=session, email=email, password="not-the-password-1")
    current = _profile(crypto.hash_password("anything-at-all-12"))
    assert sorted(verified) == sorted([current, _profile(PREVIOUS_PROFILE.hash("x"))])
    auth._dummy_password_hash.cache_clear()


def test_a_damaged_stored_hash_is_refused_like_a_wrong_password(session):
    user = _register(session)
    user.password_hash = "not-an-argon2-hash"
    session.add(user)
    session.commit()
    error = _error(sign_in_password, session=session, email=user.email, password=PASSWORD)
    assert error.code == "invalid_credentials"


def test_a_successful_sign_in_pays_one_verification_only(session, monkeypatch):
    import services.auth as auth

    user = _register(session)
    verified: list[str] = []

    def recording_verify(password_hash, password):
        verified.append(password_hash)
        return verify_password(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", recording_verify)
    monkeypatch.setattr(crypto, "verify_password", recording_verify)
    sign_in_password(session=session, email=user.email, password=PASSWORD)
    assert verified == [user.password_hash]


def test_mail_forms_send_at_most_one_link_per_account_per_minute(session):
    user = _register(session)
    sent = len(outbox_list(session=session))
    for _ in range(5):
        password_reset_request(session=session, email=user.email, base_url=BASE_URL)
        verification_resend(session=session, email=user.email, base_url=BASE_URL)
    # one reset mail; the registration mail already covers this minute's verification link
    assert len(outbox_list(session=session)) == sent + 1
    _advance(seconds=61)
    verification_resend(session=session, email=user.email, base_url=BASE_URL)
    assert len(outbox_list(session=session)) == sent + 2


def test_links_mailed_before_a_secret_key_rotation_still_work(session, monkeypatch):
    from core.settings import reset_settings_cache

    monkeypatch.setenv("SECRET_KEY", "old-secret-Zq7vB2xLk9pW4mN8rT1yH6cF3jD5sA0-links")
    reset_settings_cache()
    user = _register(session)
    [verify_token] = _link_tokens(session, user.email, "verify-email")
    password_reset_request(session=session, email=user.email, base_url=BASE_URL)
    [reset_token] = _link_tokens(session, user.email, "reset-password")

    monkeypatch.setenv("SECRET_KEY", "new-secret-Pk3xQ9vL2mW7nB4tR8yC1hF6jD0sG5e-links")
    monkeypatch.setenv("SECRET_KEY_PREVIOUS", "old-secret-Zq7vB2xLk9pW4mN8rT1yH6cF3jD5sA0-links")
    reset_settings_cache()
    assert email_verify(session=session, token=verify_token).email_verified_at is not None
    password_reset_complete(session=session, token=reset_token, new_password=NEW_PASSWORD)
    assert _signed_in(session, password=NEW_PASSWORD)[0]
