"""TOTP two-factor authentication: enrolment with a QR code, verification, recovery codes.

Changing 2FA settings asks for the account password again (`services.lockout.
password_reconfirm`: wrong answers count toward the sign-in lockout). This module imports
`services.lockout`, never `services.auth` (which imports this one for `totp_verify`).

Turning 2FA on (also after Reconfigure) signs out every other session of the person: a
session opened with the password alone must not outlive the decision to require more.

Key rotation: the TOTP secret is stored encrypted; after SECRET_KEY is rotated it still
decrypts with the old key listed in SECRET_KEY_PREVIOUS and is re-encrypted under the new key
the next time it is used. Recovery codes are looked up under every key. When no configured key
can decrypt the secret, the person is told so (`secret_key_rotated`), never "An error occurred".

Transactions: every function works inside the caller's transaction and flushes; none commits
or rolls back. The callers commit: the Settings page through the org-page skeleton, the
sign-in step of `services.auth` through its caller. A wrong password counts toward the
lockout whatever the caller then does with its transaction.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy import update
from sqlmodel import Session, delete, select

from core.clock import utcnow
from core.crypto import (
    SecretUndecryptable,
    decrypt,
    encrypt,
    hash_token,
    reencrypt_if_stale,
    token_hash_candidates,
)
from models import RecoveryCode, User, UserSession
from services.audit import audit_record
from services.error_codes import Code
from services.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    error_with_code,
)
from services.lockout import password_reconfirm

TOTP_ISSUER = "Creative Studio"
TOTP_VALID_WINDOW = 1  # accept the previous and the next 30-second step (clock drift)
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)
_RECOVERY_HALF_LENGTH = 5  # "xxxxx-xxxxx": 10 symbols of 31, about 50 bits


@dataclass(frozen=True)
class TotpEnrolment:
    """What the enrolment screen shows: the secret (for manual entry), its URI and a QR code."""

    secret: str
    provisioning_uri: str
    qr_svg: str


def _user_get(session: Session, user_id: int, *, for_update: bool = False) -> User:
    query = select(User).where(User.id == user_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    user = session.exec(query).first()
    if user is None:
        raise NotFound("This account no longer exists. Sign in again.")
    return user


def _require_password(session: Session, user: User, password: str) -> None:
    if not user.password_hash:
        raise error_with_code(
            Code.invalid_credentials,
            "Your account has no password yet, and changing two-factor settings needs one. "
            "Set a password with 'Forgot password' on the sign-in page, then try again.",
            base=PermissionDenied,
        )
    password_reconfirm(
        session=session,
        user=user,
        password=password,
        wrong_message="That password is not correct. Enter your current account password to "
        "change two-factor settings.",
    )


SECRET_UNREADABLE_AT_SIGN_IN = (
    "Two-factor codes cannot be checked for your account right now: the server's encryption "
    "key was changed without keeping the previous one, so your authenticator secret cannot be "
    "read. If you saved recovery codes, try one. Otherwise contact support and mention "
    "'secret_key_rotated': the operator can add the previous key to SECRET_KEY_PREVIOUS."
)
SECRET_UNREADABLE_AT_ENROLMENT = (
    "This two-factor setup was started before the server's encryption key changed, so it "
    "cannot be finished. Cancel it and set up two-factor authentication again."
)


def _totp_secret(user: User, *, unreadable_message: str) -> str:
    """The user's TOTP secret in clear; moved to the current key when it was under an old one.

    Raises:
        DomainError: `secret_key_rotated` when no configured key can decrypt it.
    """
    try:
        secret = decrypt(user.totp_secret_encrypted)
        fresh = reencrypt_if_stale(user.totp_secret_encrypted)
    except SecretUndecryptable:
        raise error_with_code(Code.secret_key_rotated, unreadable_message) from None
    if fresh is not None:  # the caller holds the row locked and commits
        user.totp_secret_encrypted = fresh
    return secret


def _other_sessions_end(session: Session, *, user_id: int, keep_session_id: int | None) -> int:
    """Sign out every session of the user except `keep_session_id`; returns how many ended."""
    query = update(UserSession).where(
        UserSession.user_id == user_id,
        UserSession.revoked_at.is_(None),  # type: ignore[union-attr]
    )
    if keep_session_id is not None:
        query = query.where(UserSession.id != keep_session_id)
    return session.execute(query.values(revoked_at=utcnow())).rowcount or 0


def _normalize_totp_code(code: str) -> str:
    return re.sub(r"\s+", "", code or "")


def _normalize_recovery_code(code: str) -> str:
    return re.sub(r"[\s-]+", "", code or "").lower()


def _new_recovery_code() -> str:
    symbols = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(2 * _RECOVERY_HALF_LENGTH))
    return f"{symbols[:_RECOVERY_HALF_LENGTH]}-{symbols[_RECOVERY_HALF_LENGTH:]}"


def _recovery_codes_replace(session: Session, user: User) -> list[str]:
    """Delete the user's recovery codes and store 10 new ones (hashed); returns them in clear."""
    session.exec(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        session.add(
            RecoveryCode(user_id=user.id, code_hash=hash_token(_normalize_recovery_code(code)))
        )
    session.flush()
    return codes


def _matching_step(secret: str, code: str, *, after_step: int | None) -> int | None:
    """The time step (within +-TOTP_VALID_WINDOW of now) whose code equals `code`, if unused."""
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    current_step = totp.timecode(utcnow())
    for step in range(current_step - TOTP_VALID_WINDOW, current_step + TOTP_VALID_WINDOW + 1):
        if after_step is not None and step <= after_step:
            continue  # that code (or an earlier one) was already used: no replay
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def totp_current_code(secret: str) -> str:
    """The code an authenticator app would show now (for tests and local tooling)."""
    return pyotp.TOTP(secret).at(utcnow())


def totp_begin_enrolment(*, session: Session, user_id: int) -> TotpEnrolment:
    """Start (or restart) TOTP enrolment: a new secret, stored encrypted, not yet enabled.

    Raises:
        Conflict: code `totp_already_enabled` when 2FA is on (use reconfigure instead).
    """
    user = _user_get(session, user_id, for_update=True)
    if user.totp_enabled_at is not None:
        raise error_with_code(
            Code.totp_already_enabled,
            "Two-factor authentication is already on. To use a new authenticator app, choose "
            "Reconfigure and confirm with your password.",
            base=Conflict,
        )
    secret = pyotp.random_base32()
    user.totp_secret_encrypted = encrypt(secret)
    user.totp_last_used_step = None
    session.add(user)
    session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)
    qr_svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#111111", light="#ffffff")
    return TotpEnrolment(secret=secret, provisioning_uri=uri, qr_svg=qr_svg)


def totp_confirm_enrolment(
    *, session: Session, user_id: int, code: str, current_session_id: int | None = None
) -> list[str]:
    """Turn 2FA on once the user proves their app shows the right code.

    Every other session of the user ends (also pending sign-ins); `current_session_id`, the
    session doing this, stays signed in (None: every session ends).

    Returns:
        The 10 one-time recovery codes, in clear; shown once, only their hashes are kept.

    Raises:
        DomainError: `totp_not_started` (no enrolment in progress), `totp_already_enabled`,
            `totp_invalid` (wrong or reused code), `secret_key_rotated` (the setup's secret
            was stored under a key this server no longer has).
    """
    user = _user_get(session, user_id, for_update=True)
    if user.totp_enabled_at is not None:
        raise error_with_code(
            Code.totp_already_enabled,
            "Two-factor authentication is already on for this account. Nothing to confirm.",
            base=Conflict,
        )
    if not user.totp_secret_encrypted:
        raise error_with_code(
            Code.totp_not_started,
            "There is no two-factor setup in progress. Start again from Settings > Security.",
            base=Conflict,
        )
    secret = _totp_secret(user, unreadable_message=SECRET_UNREADABLE_AT_ENROLMENT)
    step = _matching_step(secret, _normalize_totp_code(code), after_step=user.totp_last_used_step)
    if step is None:
        raise error_with_code(
            Code.totp_invalid,
            "That code does not match. Enter the 6-digit code your authenticator app shows "
            "now for Creative Studio; check that your phone's clock is set automatically.",
            base=ValidationFailed,
            field="code",
        )
    user.totp_last_used_step = step
    user.totp_enabled_at = utcnow()
    session.add(user)
    codes = _recovery_codes_replace(session, user)
    revoked = _other_sessions_end(session, user_id=user.id, keep_session_id=current_session_id)
    audit_record(
        session=session,
        action="auth.2fa_enabled",
        actor_user_id=user.id,
        target_type="user",
        target_id=user.id,
        details={"other_sessions_revoked": revoked},
    )
    session.flush()
    return codes


def totp_verify(*, session: Session, user: User, code: str) -> bool:
    """Check a sign-in code: a TOTP code (+-1 step, each step once) or an unused recovery code.

    Consumes what it accepts (records the step or marks the recovery code used) in the
    caller's transaction: the caller commits. A secret still under a previous SECRET_KEY is
    re-encrypted under the current one in the same transaction.

    Raises:
        DomainError: `secret_key_rotated` for a 6-digit code when no configured key can
            decrypt the secret (no code could ever match, so nothing is counted).
    """
    if user.totp_enabled_at is None or not user.totp_secret_encrypted:
        return False
    # Lock the row so two concurrent sign-ins cannot both accept the same code.
    user = _user_get(session, user.id, for_update=True)
    totp_code = _normalize_totp_code(code)
    if re.fullmatch(r"\d{6}", totp_code):
        secret = _totp_secret(user, unreadable_message=SECRET_UNREADABLE_AT_SIGN_IN)
        session.add(user)
        step = _matching_step(secret, totp_code, after_step=user.totp_last_used_step)
        if step is None:
            return False
        user.totp_last_used_step = step
        session.add(user)
        session.flush()
        return True
    recovery = _normalize_recovery_code(code)
    if not recovery:
        return False
    recovery_code = session.exec(
        select(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash.in_(token_hash_candidates(recovery)),
            RecoveryCode.used_at.is_(None),  # type: ignore[union-attr]
        )
        .with_for_update()
    ).first()
    if recovery_code is None:
        return False
    recovery_code.used_at = utcnow()
    session.add(recovery_code)
    session.flush()
    return True


def recovery_codes_remaining(*, session: Session, user_id: int) -> int:
    """How many unused recovery codes the user still has."""
    rows = session.exec(
        select(RecoveryCode.id).where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.used_at.is_(None),  # type: ignore[union-attr]
        )
    )
    return len(list(rows))


def _totp_clear(session: Session, user: User) -> None:
    user.totp_secret_encrypted = None
    user.totp_enabled_at = None
    user.totp_last_used_step = None
    session.add(user)
    session.exec(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.flush()


def totp_disable(*, session: Session, user_id: int, password: str) -> None:
    """Turn 2FA off (also cancels an unfinished enrolment). Needs the account password.

    Raises:
        PermissionDenied: code `invalid_credentials` when the password is wrong.
    """
    user = _user_get(session, user_id, for_update=True)
    _require_password(session, user, password)
    was_enabled = user.totp_enabled_at is not None
    _totp_clear(session, user)
    if was_enabled:
        audit_record(
            session=session,
            action="auth.2fa_disabled",
            actor_user_id=user.id,
            target_type="user",
            target_id=user.id,
        )
    session.flush()


def totp_reconfigure(*, session: Session, user_id: int, password: str) -> TotpEnrolment:
    """Move 2FA to a new authenticator app: disable (password required), then begin again.

    Confirming the new app (`totp_confirm_enrolment`) ends the other sessions again.
    """
    totp_disable(session=session, user_id=user_id, password=password)
    return totp_begin_enrolment(session=session, user_id=user_id)


def recovery_codes_regenerate(*, session: Session, user_id: int, password: str) -> list[str]:
    """Replace every recovery code with 10 new ones (the old ones stop working).

    Raises:
        PermissionDenied: code `invalid_credentials` when the password is wrong.
        Conflict: code `totp_not_enabled` when 2FA is off.
    """
    user = _user_get(session, user_id, for_update=True)
    _require_password(session, user, password)
    if user.totp_enabled_at is None:
        raise error_with_code(
            Code.totp_not_enabled,
            "Two-factor authentication is off, so there are no recovery codes. Turn it on in "
            "Settings > Security first.",
            base=Conflict,
        )
    codes = _recovery_codes_replace(session, user)
    audit_record(
        session=session,
        action="auth.recovery_codes_regenerated",
        actor_user_id=user.id,
        target_type="user",
        target_id=user.id,
    )
    session.flush()
    return codes


__all__ = [
    "TotpEnrolment",
    "recovery_codes_regenerate",
    "recovery_codes_remaining",
    "totp_begin_enrolment",
    "totp_confirm_enrolment",
    "totp_current_code",
    "totp_disable",
    "totp_reconfigure",
    "totp_verify",
]
