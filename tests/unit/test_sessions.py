"""Sign-in handoff and server-side sessions: activation, timeouts, revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from core import clock, crypto
from core.crypto import hash_token
from core.settings import reset_settings_cache
from models import AuditLogEntry, User, UserSession
from services.auth import (
    session_activate,
    session_resolve,
    session_revoke,
    sessions_list,
    sessions_revoke_all,
    sign_in_password,
    user_register,
)
from services.errors import DomainError

PASSWORD = "velvet-harbor-kettle-92"
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


@pytest.fixture
def user(session) -> User:
    return user_register(
        session=session, email="ana@example.com", password=PASSWORD, name="Ana", base_url="http://x"
    )


def _advance(**delta) -> None:
    clock.freeze(clock.utcnow() + timedelta(**delta))


def _signed_in(session, email="ana@example.com") -> tuple[str, UserSession]:
    challenge = sign_in_password(session=session, email=email, password=PASSWORD)
    return session_activate(session=session, handoff_code=challenge.handoff_code)


def _error(callable_, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as caught:
        callable_(**kwargs)
    return caught.value


def test_sign_in_creates_a_pending_session_for_the_handoff_code(session, user):
    challenge = sign_in_password(
        session=session, email=user.email, password=PASSWORD, ip_address="10.0.0.1", user_agent="UA"
    )
    assert challenge.user_id == user.id and not challenge.mfa_required
    row = session.exec(select(UserSession)).one()
    assert row.token_hash == hash_token(challenge.handoff_code)
    assert row.activated_at is None and not row.mfa_pending
    assert (row.ip_address, row.user_agent) == ("10.0.0.1", "UA")
    assert clock.as_utc(row.expires_at) == START + timedelta(minutes=10)
    # A handoff code is not a session token.
    assert session_resolve(session=session, token=challenge.handoff_code) is None


def test_activation_rotates_the_token_and_works_only_once(session, user):
    challenge = sign_in_password(session=session, email=user.email, password=PASSWORD)
    token, row = session_activate(session=session, handoff_code=challenge.handoff_code)
    assert token != challenge.handoff_code and len(token) >= 43  # >= 256 bits, URL-safe
    assert row.token_hash == hash_token(token)
    assert clock.as_utc(row.activated_at) == START
    assert clock.as_utc(row.expires_at) == START + timedelta(days=30)
    resolved_user, resolved_session = session_resolve(session=session, token=token)
    assert resolved_user.id == user.id and resolved_session.id == row.id
    assert clock.as_utc(resolved_user.last_active_at) == START

    again = _error(session_activate, session=session, handoff_code=challenge.handoff_code)
    assert again.code == "sign_in_expired" and "Sign in again" in again.message
    assert session_resolve(session=session, token=challenge.handoff_code) is None


def test_a_handoff_code_expires_after_10_minutes(session, user):
    challenge = sign_in_password(session=session, email=user.email, password=PASSWORD)
    _advance(minutes=10)
    error = _error(session_activate, session=session, handoff_code=challenge.handoff_code)
    assert error.code == "sign_in_expired"


def test_unknown_handoff_code_is_refused(session, user):
    for code in ["", "nonsense"]:
        assert (
            _error(session_activate, session=session, handoff_code=code).code == "sign_in_expired"
        )


def test_unknown_or_empty_session_token_resolves_to_nothing(session, user):
    assert session_resolve(session=session, token="") is None
    assert session_resolve(session=session, token="not-a-token") is None


def test_idle_sessions_end(session, user, monkeypatch):
    monkeypatch.setenv("SESSION_IDLE_MINUTES", "30")
    reset_settings_cache()
    token, _ = _signed_in(session)
    _advance(minutes=29)
    assert session_resolve(session=session, token=token) is not None  # activity slides the window
    _advance(minutes=29)
    assert session_resolve(session=session, token=token) is not None
    _advance(minutes=30, seconds=1)
    assert session_resolve(session=session, token=token) is None


def test_sessions_end_at_their_absolute_expiry_despite_activity(session, user, monkeypatch):
    monkeypatch.setenv("SESSION_ABSOLUTE_DAYS", "1")
    reset_settings_cache()
    token, _ = _signed_in(session)
    _advance(hours=12)
    assert session_resolve(session=session, token=token) is not None
    _advance(hours=11, minutes=59)
    assert session_resolve(session=session, token=token) is not None
    _advance(minutes=1)
    assert session_resolve(session=session, token=token) is None


def test_activity_is_recorded_at_most_once_a_minute(session, user):
    token, row = _signed_in(session)
    _advance(seconds=30)
    session_resolve(session=session, token=token)
    session.refresh(row)
    assert clock.as_utc(row.last_seen_at) == START
    _advance(seconds=30)
    _, resolved = session_resolve(session=session, token=token)
    assert clock.as_utc(resolved.last_seen_at) == START + timedelta(minutes=1)
    assert clock.as_utc(session.get(User, user.id).last_active_at) == START + timedelta(minutes=1)


def test_sessions_list_shows_only_live_sessions_newest_activity_first(session, user):
    old_token, old = _signed_in(session)
    _advance(minutes=5)
    _, new = _signed_in(session)
    sign_in_password(session=session, email=user.email, password=PASSWORD)  # pending handoff
    _, revoked = _signed_in(session)
    session_revoke(session=session, user_id=user.id, session_id=revoked.id)
    assert [row.id for row in sessions_list(session=session, user_id=user.id)] == [new.id, old.id]
    _advance(minutes=2)
    session_resolve(session=session, token=old_token)
    assert [row.id for row in sessions_list(session=session, user_id=user.id)] == [old.id, new.id]


def test_revoking_a_session_signs_it_out(session, user):
    token, row = _signed_in(session)
    session_revoke(session=session, user_id=user.id, session_id=row.id)
    assert session_resolve(session=session, token=token) is None
    session_revoke(session=session, user_id=user.id, session_id=row.id)  # idempotent


def test_a_user_cannot_revoke_someone_elses_session(session, user):
    user_register(
        session=session, email="bo@example.com", password=PASSWORD, name="Bo", base_url="http://x"
    )
    token, row = _signed_in(session, email="bo@example.com")
    error = _error(session_revoke, session=session, user_id=user.id, session_id=row.id)
    assert error.code == "not_found"
    assert session_resolve(session=session, token=token) is not None


def test_sign_out_everywhere_keeps_only_the_current_session(session, user):
    current_token, current = _signed_in(session)
    other_tokens = [_signed_in(session)[0] for _ in range(2)]
    pending = sign_in_password(session=session, email=user.email, password=PASSWORD)
    revoked = sessions_revoke_all(session=session, user_id=user.id, except_session_id=current.id)
    assert revoked == 3  # two signed-in devices and the pending sign-in
    assert session_resolve(session=session, token=current_token) is not None
    assert all(session_resolve(session=session, token=t) is None for t in other_tokens)
    assert (
        _error(session_activate, session=session, handoff_code=pending.handoff_code).code
        == "sign_in_expired"
    )
    audit = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "auth.sessions_revoked_all")
    ).one()
    assert audit.actor_user_id == user.id and audit.details["revoked"] == 3


def test_sign_out_everywhere_without_exception_ends_all(session, user):
    token, _ = _signed_in(session)
    assert sessions_revoke_all(session=session, user_id=user.id) == 1
    assert session_resolve(session=session, token=token) is None
    assert sessions_list(session=session, user_id=user.id) == []
