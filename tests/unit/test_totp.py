"""TOTP 2FA: enrolment, drift, replay, recovery codes, disable/reconfigure, sign-in gating."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from core import clock, crypto
from core.crypto import decrypt, hash_token
from core.settings import reset_settings_cache
from models import AuditLogEntry, RecoveryCode, User, UserSession
from services.auth import (
    session_activate,
    session_resolve,
    sign_in_complete_mfa,
    sign_in_password,
    user_register,
)
from services.errors import DomainError
from services.totp import (
    recovery_codes_regenerate,
    recovery_codes_remaining,
    totp_begin_enrolment,
    totp_confirm_enrolment,
    totp_disable,
    totp_reconfigure,
    totp_verify,
)

PASSWORD = "velvet-harbor-kettle-92"
START = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)  # 5 s into a 30 s step


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


def _code(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.utcnow() + timedelta(seconds=30 * offset_steps))


def _wrong_code(secret: str) -> str:
    """A 6-digit code that is valid at none of the accepted steps (never flaky)."""
    valid = {_code(secret, offset) for offset in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)


def _error(callable_, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as caught:
        callable_(**kwargs)
    return caught.value


def _enrolled(session, user) -> tuple[str, list[str]]:
    enrolment = totp_begin_enrolment(session=session, user_id=user.id)
    codes = totp_confirm_enrolment(session=session, user_id=user.id, code=_code(enrolment.secret))
    _advance(minutes=5)  # later sign-ins use fresh time steps
    return enrolment.secret, codes


def _signed_in(session) -> tuple[str, UserSession]:
    challenge = sign_in_password(session=session, email="ana@example.com", password=PASSWORD)
    return session_activate(session=session, handoff_code=challenge.handoff_code)


def _verify(session, user, code) -> bool:
    result = totp_verify(session=session, user=session.get(User, user.id), code=code)
    session.commit()
    return result


# --- enrolment -----------------------------------------------------------------------------------


def test_begin_enrolment_stores_the_secret_encrypted_and_not_yet_enabled(session, user):
    enrolment = totp_begin_enrolment(session=session, user_id=user.id)
    stored = session.get(User, user.id)
    assert stored.totp_enabled_at is None
    assert enrolment.secret not in stored.totp_secret_encrypted
    assert decrypt(stored.totp_secret_encrypted) == enrolment.secret
    assert len(enrolment.secret) >= 32  # 160 bits, base32
    assert enrolment.provisioning_uri.startswith(
        "otpauth://totp/Creative%20Studio:ana%40example.com?"
    )
    assert "issuer=Creative%20Studio" in enrolment.provisioning_uri
    assert enrolment.qr_svg.lstrip().startswith("<svg") and "</svg>" in enrolment.qr_svg


def test_confirm_with_a_wrong_code_keeps_2fa_off(session, user):
    enrolment = totp_begin_enrolment(session=session, user_id=user.id)
    wrong = _wrong_code(enrolment.secret)
    error = _error(totp_confirm_enrolment, session=session, user_id=user.id, code=wrong)
    assert error.code == "totp_invalid" and "authenticator app" in error.message
    assert session.get(User, user.id).totp_enabled_at is None


def test_confirm_enables_2fa_and_returns_10_hashed_recovery_codes(session, user):
    enrolment = totp_begin_enrolment(session=session, user_id=user.id)
    codes = totp_confirm_enrolment(session=session, user_id=user.id, code=_code(enrolment.secret))
    assert clock.as_utc(session.get(User, user.id).totp_enabled_at) == START
    assert len(codes) == 10 and len(set(codes)) == 10
    rows = session.exec(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).all()
    assert {row.code_hash for row in rows} == {hash_token(code.replace("-", "")) for code in codes}
    assert not any(code in row.code_hash for row in rows for code in codes)
    assert session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "auth.2fa_enabled")
    ).one()


def test_turning_2fa_on_signs_out_every_other_session(session, user):
    here, here_row = _signed_in(session)
    elsewhere, _ = _signed_in(session)
    pending = sign_in_password(session=session, email=user.email, password=PASSWORD)
    enrolment = totp_begin_enrolment(session=session, user_id=user.id)
    totp_confirm_enrolment(
        session=session,
        user_id=user.id,
        code=_code(enrolment.secret),
        current_session_id=here_row.id,
    )
    session.commit()
    assert session_resolve(session=session, token=here) is not None
    assert session_resolve(session=session, token=elsewhere) is None
    error = _error(session_activate, session=session, handoff_code=pending.handoff_code)
    assert error.code == "sign_in_expired"  # a password-only sign-in in flight ends too
    audit = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "auth.2fa_enabled")
    ).one()
    assert audit.details == {"other_sessions_revoked": 2}


def test_confirm_without_an_enrolment_in_progress(session, user):
    error = _error(totp_confirm_enrolment, session=session, user_id=user.id, code="123456")
    assert error.code == "totp_not_started"


def test_begin_again_while_enabled_is_refused(session, user):
    _enrolled(session, user)
    error = _error(totp_begin_enrolment, session=session, user_id=user.id)
    assert error.code == "totp_already_enabled" and "Reconfigure" in error.message


# --- verification: drift and replay ---------------------------------------------------------------


def test_the_code_used_to_confirm_cannot_be_replayed(session, user):
    enrolment = totp_begin_enrolment(session=session, user_id=user.id)
    code = _code(enrolment.secret)
    totp_confirm_enrolment(session=session, user_id=user.id, code=code)
    assert not _verify(session, user, code)


def test_a_code_is_accepted_only_once(session, user):
    secret, _ = _enrolled(session, user)
    code = _code(secret)
    assert _verify(session, user, code)
    assert not _verify(session, user, code)
    _advance(seconds=30)
    assert _verify(session, user, _code(secret))


def test_one_step_of_drift_either_way_is_accepted(session, user):
    secret, _ = _enrolled(session, user)
    assert _verify(session, user, _code(secret, -1))
    assert _verify(session, user, _code(secret, +1))


def test_two_steps_of_drift_are_refused(session, user):
    secret, _ = _enrolled(session, user)
    assert not _verify(session, user, _code(secret, -2))
    assert not _verify(session, user, _code(secret, +2))
    assert _verify(session, user, _code(secret))


def test_after_a_code_is_used_older_steps_are_refused(session, user):
    secret, _ = _enrolled(session, user)
    previous_step_code = _code(secret, -1)
    assert _verify(session, user, _code(secret, +1))
    assert not _verify(session, user, previous_step_code)
    assert not _verify(session, user, _code(secret))


def test_garbage_codes_are_refused(session, user):
    _enrolled(session, user)
    for code in ["", "   ", "12345", "1234567", "abcdef"]:
        assert not _verify(session, user, code)


def test_a_user_without_2fa_has_no_valid_codes(session, user):
    enrolment = totp_begin_enrolment(session=session, user_id=user.id)  # not confirmed
    assert not _verify(session, user, _code(enrolment.secret))


# --- recovery codes --------------------------------------------------------------------------------


def test_a_recovery_code_works_once_in_any_case_and_spacing(session, user):
    _, codes = _enrolled(session, user)
    assert _verify(session, user, " " + codes[0].upper().replace("-", " ") + " ")
    assert not _verify(session, user, codes[0])
    assert recovery_codes_remaining(session=session, user_id=user.id) == 9
    assert _verify(session, user, codes[1])


def test_regenerating_recovery_codes_replaces_them(session, user):
    _, old_codes = _enrolled(session, user)
    error = _error(
        recovery_codes_regenerate, session=session, user_id=user.id, password="wrong-password-1"
    )
    assert error.code == "invalid_credentials"
    new_codes = recovery_codes_regenerate(session=session, user_id=user.id, password=PASSWORD)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert not _verify(session, user, old_codes[0])
    assert _verify(session, user, new_codes[0])
    assert session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "auth.recovery_codes_regenerated")
    ).one()


def test_regenerating_needs_2fa_on(session, user):
    error = _error(recovery_codes_regenerate, session=session, user_id=user.id, password=PASSWORD)
    assert error.code == "totp_not_enabled"


# --- disable and reconfigure -----------------------------------------------------------------------


def test_disable_needs_the_password(session, user):
    _enrolled(session, user)
    error = _error(totp_disable, session=session, user_id=user.id, password="wrong-password-1")
    assert error.code == "invalid_credentials" and "password" in error.message
    assert session.get(User, user.id).totp_enabled_at is not None


def test_disable_turns_2fa_off_and_drops_recovery_codes(session, user):
    _, codes = _enrolled(session, user)
    totp_disable(session=session, user_id=user.id, password=PASSWORD)
    stored = session.get(User, user.id)
    assert stored.totp_enabled_at is None and stored.totp_secret_encrypted is None
    assert session.exec(select(RecoveryCode)).all() == []
    assert not _verify(session, user, codes[0])
    assert session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "auth.2fa_disabled")
    ).one()
    assert not sign_in_password(session=session, email=user.email, password=PASSWORD).mfa_required


def test_reconfigure_starts_a_new_enrolment(session, user):
    old_secret, old_codes = _enrolled(session, user)
    error = _error(totp_reconfigure, session=session, user_id=user.id, password="wrong-password-1")
    assert error.code == "invalid_credentials"
    enrolment = totp_reconfigure(session=session, user_id=user.id, password=PASSWORD)
    assert enrolment.secret != old_secret
    assert session.get(User, user.id).totp_enabled_at is None
    new_codes = totp_confirm_enrolment(
        session=session, user_id=user.id, code=_code(enrolment.secret)
    )
    assert not set(new_codes) & set(old_codes)
    _advance(seconds=30)
    assert not _verify(session, user, _code(old_secret))
    assert _verify(session, user, _code(enrolment.secret))


# --- sign-in with 2FA --------------------------------------------------------------------------------


def test_sign_in_with_2fa_needs_a_code_before_the_session_exists(session, user):
    secret, _ = _enrolled(session, user)
    challenge = sign_in_password(session=session, email=user.email, password=PASSWORD)
    assert challenge.mfa_required
    assert session.exec(select(UserSession)).one().mfa_pending

    blocked = _error(session_activate, session=session, handoff_code=challenge.handoff_code)
    assert blocked.code == "totp_required"
    empty = _error(
        sign_in_complete_mfa, session=session, handoff_code=challenge.handoff_code, code=" "
    )
    assert empty.code == "totp_required"
    wrong = _error(
        sign_in_complete_mfa,
        session=session,
        handoff_code=challenge.handoff_code,
        code=_wrong_code(secret),
    )
    assert wrong.code == "totp_invalid" and "recovery code" in wrong.message

    sign_in_complete_mfa(session=session, handoff_code=challenge.handoff_code, code=_code(secret))
    token, _ = session_activate(session=session, handoff_code=challenge.handoff_code)
    assert session_resolve(session=session, token=token)[0].id == user.id
    assert session.get(User, user.id).failed_sign_in_count == 0


def test_sign_in_with_a_recovery_code(session, user):
    _, codes = _enrolled(session, user)
    challenge = sign_in_password(session=session, email=user.email, password=PASSWORD)
    sign_in_complete_mfa(session=session, handoff_code=challenge.handoff_code, code=codes[3])
    assert session_activate(session=session, handoff_code=challenge.handoff_code)[0]
    second = sign_in_password(session=session, email=user.email, password=PASSWORD)
    error = _error(
        sign_in_complete_mfa, session=session, handoff_code=second.handoff_code, code=codes[3]
    )
    assert error.code == "totp_invalid"


def test_a_sign_in_code_cannot_be_replayed_in_another_sign_in(session, user):
    secret, _ = _enrolled(session, user)
    code = _code(secret)
    first = sign_in_password(session=session, email=user.email, password=PASSWORD)
    sign_in_complete_mfa(session=session, handoff_code=first.handoff_code, code=code)
    second = sign_in_password(session=session, email=user.email, password=PASSWORD)
    error = _error(
        sign_in_complete_mfa, session=session, handoff_code=second.handoff_code, code=code
    )
    assert error.code == "totp_invalid"


def test_five_wrong_codes_lock_the_account_and_end_the_attempt(session, user):
    secret, _ = _enrolled(session, user)
    challenge = sign_in_password(session=session, email=user.email, password=PASSWORD)
    for _ in range(4):
        error = _error(
            sign_in_complete_mfa,
            session=session,
            handoff_code=challenge.handoff_code,
            code=_wrong_code(secret),
        )
        assert error.code == "totp_invalid"
    # Signing in with the password again must not reset the count while 2FA is pending.
    challenge = sign_in_password(session=session, email=user.email, password=PASSWORD)
    error = _error(
        sign_in_complete_mfa,
        session=session,
        handoff_code=challenge.handoff_code,
        code=_wrong_code(secret),
    )
    assert error.code == "account_locked" and "15 minutes" in error.message
    after = _error(
        sign_in_complete_mfa,
        session=session,
        handoff_code=challenge.handoff_code,
        code=_code(secret),
    )
    assert after.code == "sign_in_expired"
    assert (
        _error(sign_in_password, session=session, email=user.email, password=PASSWORD).code
        == "account_locked"
    )


def test_guessing_the_password_from_a_session_counts_toward_the_lockout(session, user):
    from services.totp import totp_disable

    _enrolled(session, user)
    for _ in range(4):
        assert (
            _error(
                totp_disable, session=session, user_id=user.id, password="not-my-password-123"
            ).code
            == "invalid_credentials"
        )
    assert (
        _error(totp_disable, session=session, user_id=user.id, password="not-my-password-123").code
        == "account_locked"
    )
    # even the right password waits out the lock
    assert (
        _error(totp_disable, session=session, user_id=user.id, password=PASSWORD).code
        == "account_locked"
    )
    _advance(minutes=16)
    totp_disable(session=session, user_id=user.id, password=PASSWORD)


# --- SECRET_KEY rotation ---------------------------------------------------------------------------

OLD_KEY = "old-secret-Zq7vB2xLk9pW4mN8rT1yH6cF3jD5sA0-rotation"
NEW_KEY = "new-secret-Pk3xQ9vL2mW7nB4tR8yC1hF6jD0sG5e-rotation"


def _use_keys(monkeypatch, current: str, previous: str = "") -> None:
    monkeypatch.setenv("SECRET_KEY", current)
    monkeypatch.setenv("SECRET_KEY_PREVIOUS", previous)
    reset_settings_cache()


def test_after_rotation_2fa_sign_in_works_and_moves_the_secret_to_the_new_key(
    session, user, monkeypatch
):
    _use_keys(monkeypatch, OLD_KEY)
    secret, codes = _enrolled(session, user)
    before = sign_in_password(session=session, email=user.email, password=PASSWORD)
    sign_in_complete_mfa(session=session, handoff_code=before.handoff_code, code=_code(secret))
    old_session, _ = session_activate(session=session, handoff_code=before.handoff_code)
    session.commit()
    _advance(minutes=1)  # the next sign-in uses a fresh time step
    under_old_key = session.get(User, user.id).totp_secret_encrypted

    _use_keys(monkeypatch, NEW_KEY, previous=OLD_KEY)
    assert session_resolve(session=session, token=old_session) is not None  # still signed in
    challenge = sign_in_password(session=session, email=user.email, password=PASSWORD)
    sign_in_complete_mfa(session=session, handoff_code=challenge.handoff_code, code=_code(secret))
    token, _ = session_activate(session=session, handoff_code=challenge.handoff_code)
    session.commit()
    assert session_resolve(session=session, token=token)[0].id == user.id

    stored = session.get(User, user.id).totp_secret_encrypted
    assert stored != under_old_key
    _use_keys(monkeypatch, NEW_KEY)  # the old key can now be dropped: the secret moved
    assert decrypt(stored) == secret
    # The old session was re-hashed under the new key when it was used after the rotation.
    assert session_resolve(session=session, token=old_session) is not None


def test_after_rotation_recovery_codes_made_under_the_old_key_still_work(
    session, user, monkeypatch
):
    _use_keys(monkeypatch, OLD_KEY)
    _, codes = _enrolled(session, user)
    _use_keys(monkeypatch, NEW_KEY, previous=OLD_KEY)
    challenge = sign_in_password(session=session, email=user.email, password=PASSWORD)
    sign_in_complete_mfa(session=session, handoff_code=challenge.handoff_code, code=codes[0])
    assert session_activate(session=session, handoff_code=challenge.handoff_code)[0]
    assert recovery_codes_remaining(session=session, user_id=user.id) == 9


def test_a_sign_in_started_before_the_rotation_can_finish_after_it(session, user, monkeypatch):
    _use_keys(monkeypatch, OLD_KEY)
    secret, _ = _enrolled(session, user)
    challenge = sign_in_password(session=session, email=user.email, password=PASSWORD)
    _use_keys(monkeypatch, NEW_KEY, previous=OLD_KEY)
    sign_in_complete_mfa(session=session, handoff_code=challenge.handoff_code, code=_code(secret))
    assert session_activate(session=session, handoff_code=challenge.handoff_code)[0]


def test_without_the_old_key_2fa_sign_in_says_what_happened_and_what_to_do(
    session, user, monkeypatch
):
    _use_keys(monkeypatch, OLD_KEY)
    secret, _ = _enrolled(session, user)
    _use_keys(monkeypatch, NEW_KEY)  # rotated, old key not kept
    challenge = sign_in_password(session=session, email=user.email, password=PASSWORD)
    error = _error(
        sign_in_complete_mfa,
        session=session,
        handoff_code=challenge.handoff_code,
        code=_code(secret),
    )
    assert error.code == "secret_key_rotated"
    assert "contact support" in error.message and "SECRET_KEY_PREVIOUS" in error.message
    assert "recovery codes" in error.message
    # Nothing is counted against the person: no code could have matched.
    assert session.get(User, user.id).failed_sign_in_count == 0


def test_an_enrolment_begun_under_a_dropped_key_asks_to_start_again(session, user, monkeypatch):
    _use_keys(monkeypatch, OLD_KEY)
    enrolment = totp_begin_enrolment(session=session, user_id=user.id)
    _use_keys(monkeypatch, NEW_KEY)
    error = _error(
        totp_confirm_enrolment, session=session, user_id=user.id, code=_code(enrolment.secret)
    )
    assert error.code == "secret_key_rotated" and "set up two-factor" in error.message
    restarted = totp_begin_enrolment(session=session, user_id=user.id)
    assert totp_confirm_enrolment(session=session, user_id=user.id, code=_code(restarted.secret))
