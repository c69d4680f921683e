"""Accounts and sign-in: registration, email links, passwords, lockout, server-side sessions.

Sign-in is a handoff so the browser never receives the long-lived session token over the
websocket: `sign_in_password` returns a short-lived one-time code; when 2FA is on,
`sign_in_complete_mfa` clears the pending flag; an HTTP route then calls `session_activate`,
which swaps the code for the session token (stored hashed) and sets it as an HttpOnly cookie.

Failed attempts, the 15-minute lock and password re-confirmation live in `services.lockout`
(below this module and `services.totp`); their names are importable from here as before.

Sign-in is bound to the browser that started it (login CSRF)
-----------------------------------------------------------
Otherwise a handoff link `/auth/session?code=...` obtained by an attacker for their own
account, opened by a victim, would sign the victim's browser in as the attacker. So:

* Before a password can be typed, the browser holds a random pre-auth cookie (HttpOnly,
  SameSite=Lax, Secure and `__Host-` prefixed over https; `browser_binding_cookie`). The
  sign-in page gets it from one backend route (`/auth/sign-in`) that sets it and sends the
  browser straight back: the page's events travel over a websocket whose Cookie header is fixed
  when it connects, so the cookie must exist before that connection. Every backend route that
  leads to the sign-in page (sign-out, the handoff, Google) sets it on the way too. Its value
  never changes once set, so several tabs share it.
* `sign_in_password` and `sign_in_handoff_create` store the keyed hash of that cookie with the
  pending session (`UserSession.browser_binding_hash`); Google sign-in stores it with the
  OAuth flow state too (`services.oidc`).
* `session_activate`, called by the `/auth/session` route with the cookie of the request,
  swaps the code only when the cookie matches; otherwise `sign_in_other_browser` ("This
  sign-in was started in another browser. Sign in again here."). A code from server code that
  hands the session over itself (no binding) cannot be swapped by the route at all.

No enumeration
--------------
Registration answers the same for a free and a taken address (the owner of a taken one gets
a mail saying someone tried to register it; nothing else changes); an unknown address locks
like an account (`services.lockout`); a password reset request is done off the request path
(`password_reset_request_later`), so neither its answer nor its timing differs.

Key rotation
------------
Token hashes (handoff codes, session tokens, email links) are looked up under the current and
every previous SECRET_KEY (`core.crypto.token_hash_candidates`, `IN (...)`); a session found
under an old key is re-hashed under the new one when next used.

Transactions
------------
The code that opens the unit of work commits it; helpers that receive a session never commit
or roll back behind their caller. Some services here are whole use cases that own their unit
of work and commit, each for a reason named in its docstring:

* `user_register`, `verification_resend`, `email_verify`, `password_reset_request`,
  `password_reset_complete`: the public pages (register, verify email, reset password) call
  them with a session of their own, and each commits its effect together with its mail.
  `password_reset_request_later` runs `password_reset_request` in a unit of work of its own,
  on a background thread.
* `sign_in_password`: commits the pending session, which the `/auth/session` route (another
  request) must find.
* `session_revoke`: commits, so the `/auth/sign-out` route that follows finds it ended.
* `session_resolve`: commits the activity touch (at most once a minute), first thing in a
  unit of work, before the caller writes anything.

Everything else (`sign_in_handoff_create`, `sign_in_complete_mfa`, `session_activate`,
`password_change`, `sessions_revoke_all`) flushes and leaves the commit to
its caller: the sign-in page, the `/auth/session` route, the org-page skeleton.
"""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, exists, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, delete, select

from core import db, routes
from core.clock import as_utc, utcnow
from core.crypto import (
    constant_time_equals,
    hash_password,
    hash_token,
    new_token,
    password_needs_rehash,
    password_refusal_work,
    token_hash_candidates,
    verify_password,
)
from core.settings import get_settings
from models import (
    EmailToken,
    Membership,
    OAuthConnection,
    Organization,
    OrgSecurity,
    OutboxMail,
    Subscription,
    User,
    UserSession,
)
from models.enums import ConnectionStatus, EmailTokenPurpose
from services.audit import audit_record
from services.error_codes import Code
from services.errors import (
    DomainError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    error_with_code,
)
from services.lockout import (  # noqa: F401  (the lockout rules, importable from here as before)
    INVALID_CREDENTIALS_MESSAGE,
    LOCKOUT_MINUTES,
    MAX_FAILED_SIGN_INS,
    account_locked_error,
    failed_attempt_record,
    failed_attempts_clear,
    invalid_credentials_error,
    lock_check,
    password_reconfirm,
    unknown_email_failed_attempt_record,
    unknown_email_lock_check,
)
from services.mail import mail_send
from services.orgs import orgs_for_user
from services.passwords import password_check
from services.totp import totp_verify

HANDOFF_MINUTES = 10
VERIFY_EMAIL_TTL = timedelta(hours=24)
RESET_PASSWORD_TTL = timedelta(hours=1)
SESSION_TOUCH_SECONDS = 60
SESSION_TOKEN_BYTES = 32  # 256 bits

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_MAX_EMAIL_LENGTH = 320
_MAX_NAME_LENGTH = 200
BROWSER_BINDING_BYTES = 32

SIGN_IN_OTHER_BROWSER_MESSAGE = "This sign-in was started in another browser. Sign in again here."

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignInChallenge:
    """Result of a correct password: a one-time handoff code, and whether 2FA must follow."""

    user_id: int
    handoff_code: str
    mfa_required: bool


# --- helpers -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _dummy_password_hash() -> str:
    """A real argon2id hash, verified when the account doesn't exist so timing matches."""
    return hash_password(new_token(16))


def _normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def _token_hash_in(column, token: str):
    """`column IN (hash under the current key, hash under each previous key)`."""
    return column.in_(token_hash_candidates(token))


# --- browser binding (login CSRF) -----------------------------------------------------------------


@dataclass(frozen=True)
class BrowserBindingCookie:
    """How the pre-auth cookie is named and flagged on this deployment."""

    name: str
    secure: bool


def browser_binding_cookie() -> BrowserBindingCookie:
    """`__Host-cs_preauth` (Secure) when the backend is served over https, else `cs_preauth`."""
    secure = get_settings().backend_base_url.startswith("https://")
    return BrowserBindingCookie(
        name=routes.PREAUTH_COOKIE_HTTPS if secure else routes.PREAUTH_COOKIE, secure=secure
    )


def browser_binding_new() -> str:
    """A fresh random value for the pre-auth cookie (256 bits)."""
    return new_token(BROWSER_BINDING_BYTES)


def browser_binding_usable(value: str | None) -> bool:
    """Whether a cookie value can bind a sign-in (present, and of a sane length)."""
    return bool(value) and 16 <= len(value) <= 128


def _browser_binding_hash(value: str) -> str | None:
    return hash_token(value) if browser_binding_usable(value) else None


def browser_binding_matches(stored_hash: str | None, presented: str | None) -> bool:
    """Whether the presented pre-auth cookie is the one whose hash was stored (any key)."""
    if not stored_hash or not browser_binding_usable(presented):
        return False
    return any(
        constant_time_equals(stored_hash, candidate)
        for candidate in token_hash_candidates(presented)
    )


def sign_in_other_browser_error() -> DomainError:
    return error_with_code(Code.sign_in_other_browser, SIGN_IN_OTHER_BROWSER_MESSAGE)


def _user_by_email(session: Session, email: str, *, for_update: bool = False) -> User | None:
    query = select(User).where(User.email == email)
    if for_update:
        # Serializes concurrent sign-ins of one account so no failed attempt is lost.
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.exec(query).first()


def _user_get(session: Session, user_id: int, *, for_update: bool = False) -> User:
    query = select(User).where(User.id == user_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    user = session.exec(query).first()
    if user is None:
        raise NotFound("This account no longer exists. Sign in again.")
    return user


def _base_url(base_url: str | None) -> str:
    return (base_url or get_settings().app_base_url).rstrip("/")


def _email_token_issue(
    session: Session, *, user: User, purpose: EmailTokenPurpose, ttl: timedelta
) -> str:
    """A fresh single-use link token (stored hashed); earlier unused ones stop working."""
    session.exec(
        delete(EmailToken).where(
            EmailToken.user_id == user.id,
            EmailToken.purpose == purpose.value,
            EmailToken.used_at.is_(None),  # type: ignore[union-attr]
        )
    )
    token = new_token(32)
    session.add(
        EmailToken(
            user_id=user.id,
            purpose=purpose.value,
            token_hash=hash_token(token),
            expires_at=utcnow() + ttl,
        )
    )
    session.flush()
    return token


_LINK_NEXT_STEP = {
    EmailTokenPurpose.verify_email: (
        "Sign in and choose 'Send a new link' in the banner at the top of the page for a new "
        "verification email."
    ),
    EmailTokenPurpose.reset_password: "Request a new link with 'Forgot password' on the sign-in page.",
}
_LINK_NAME = {
    EmailTokenPurpose.verify_email: "verification link",
    EmailTokenPurpose.reset_password: "password reset link",
}


def _email_token_find(session: Session, *, token: str, purpose: EmailTokenPurpose) -> EmailToken:
    """The usable token row for a link, locked; raises link_invalid / link_used / link_expired."""
    name, next_step = _LINK_NAME[purpose], _LINK_NEXT_STEP[purpose]
    row = None
    if token:
        row = session.exec(
            select(EmailToken)
            .where(
                _token_hash_in(EmailToken.token_hash, token), EmailToken.purpose == purpose.value
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
    if row is None:
        raise error_with_code(
            Code.link_invalid,
            f"This {name} is not valid: it may be incomplete or replaced by a newer email. "
            f"{next_step}",
            base=ValidationFailed,
            field="token",
        )
    if row.used_at is not None:
        raise error_with_code(
            Code.link_used,
            f"This {name} has already been used; each link works once. {next_step}",
            base=ValidationFailed,
            field="token",
        )
    if as_utc(row.expires_at) <= utcnow():
        raise error_with_code(
            Code.link_expired,
            f"This {name} has expired. {next_step}",
            base=ValidationFailed,
            field="token",
        )
    return row


def _send_verification_mail(session: Session, *, user: User, base_url: str) -> None:
    token = _email_token_issue(
        session, user=user, purpose=EmailTokenPurpose.verify_email, ttl=VERIFY_EMAIL_TTL
    )
    link = f"{_base_url(base_url)}/verify-email?token={token}"
    mail_send(
        session=session,
        to=user.email,
        subject="Verify your email for Creative Studio",
        body_text=(
            f"Hello{' ' + user.name if user.name else ''},\n\n"
            "Confirm your email address to start using models in Creative Studio:\n\n"
            f"{link}\n\n"
            "The link works once and expires in 24 hours. If you did not create an account, "
            "you can ignore this email.\n"
        ),
    )


def _revoke_sessions(session: Session, *, user_id: int, except_session_id: int | None) -> int:
    """Revoke every live session of a user (also pending sign-ins); no commit."""
    query = select(UserSession).where(
        UserSession.user_id == user_id,
        UserSession.revoked_at.is_(None),  # type: ignore[union-attr]
    )
    if except_session_id is not None:
        query = query.where(UserSession.id != except_session_id)
    now = utcnow()
    count = 0
    for user_session in session.exec(query.with_for_update()).all():
        user_session.revoked_at = now
        session.add(user_session)
        count += 1
    session.flush()
    return count


def require_verified_email(user: User) -> None:
    """Raise `email_not_verified` unless the user confirmed their email (needed for model use)."""
    if user.email_verified_at is None:
        raise error_with_code(
            Code.email_not_verified,
            f"Your email address ({user.email}) is not verified yet, and models can only be "
            "used with a verified email. Open the link we sent you, or request a new one.",
            base=PermissionDenied,
        )


# --- registration and email links ---------------------------------------------------------------


REGISTRATION_ATTEMPT_SUBJECT = "Someone tried to create a Creative Studio account with your email"


def _registration_attempt_mail(session: Session, *, email: str, base_url: str) -> None:
    """Tell the owner of a taken address that someone tried to register it (at most once a
    minute; the form needs no sign-in). Changes nothing else."""
    newest = session.exec(
        select(OutboxMail.created_at)
        .where(
            OutboxMail.to_address == email,
            OutboxMail.subject == REGISTRATION_ATTEMPT_SUBJECT,
        )
        .order_by(OutboxMail.created_at.desc())
        .limit(1)
    ).first()
    if newest is not None and utcnow() - as_utc(newest) < MAIL_RESEND_INTERVAL:
        return
    base = _base_url(base_url)
    mail_send(
        session=session,
        to=email,
        subject=REGISTRATION_ATTEMPT_SUBJECT,
        body_text=(
            f"Someone just tried to create a Creative Studio account with {email}. This address "
            "already has an account, so no new account was created and nothing was changed.\n\n"
            f"If it was you, sign in here:\n\n{base}{routes.SIGN_IN}\n\n"
            f"Forgot your password? Choose a new one here:\n\n{base}{routes.FORGOT_PASSWORD}\n\n"
            "If it was not you, you can ignore this email: your account and password stay as "
            "they are.\n"
        ),
    )


def user_register(
    *, session: Session, email: str, password: str, name: str, base_url: str
) -> User | None:
    """Create an account and send its verification link; for a taken address, tell its owner.

    Answers the same for a free and a taken address, so it cannot be used to find out who has
    an account: the same checks in the same order, one password hash, one mail, one commit.
    For a taken address nothing changes except that its owner gets a mail saying someone tried
    to register it (`REGISTRATION_ATTEMPT_SUBJECT`, at most one a minute).

    Args:
        session: Database session; this service owns the unit of work and commits (the
            register page calls it with a session of its own).
        email: Address to register; stored stripped and lower-cased.
        password: Checked against the password policy, stored as argon2id.
        name: Display name (may be empty).
        base_url: Public app URL the links in the mail point to.

    Returns:
        The new (unverified) user, or None when the address already had an account. Callers
        show the same thing in both cases ("we sent an email to ...").

    Raises:
        ValidationFailed: `invalid_email` (field "email"), `weak_password` (field "password"),
            `validation_failed` for a name that is too long.
    """
    normalized = _normalize_email(email)
    if len(normalized) > _MAX_EMAIL_LENGTH:
        # Never echo a huge paste back: say how long it is and what fits.
        raise error_with_code(
            Code.invalid_email,
            f"That email address is {len(normalized):,} characters long; an address has at most "
            f"{_MAX_EMAIL_LENGTH}. Check what was pasted and enter it as name@example.com.",
            base=ValidationFailed,
            field="email",
        )
    if not _EMAIL_RE.match(normalized):
        raise error_with_code(
            Code.invalid_email,
            f"'{email.strip()}' is not a valid email address. Enter it as name@example.com.",
            base=ValidationFailed,
            field="email",
        )
    name = (name or "").strip()
    if len(name) > _MAX_NAME_LENGTH:
        raise ValidationFailed(
            f"The name is too long ({len(name)} characters). Use at most {_MAX_NAME_LENGTH}.",
            field="name",
        )
    password_check(password=password, email=normalized)
    # Hashed whether or not the address is free: the answer takes the same time either way.
    password_hash = hash_password(password)
    if _user_by_email(session, normalized, for_update=True) is not None:
        _registration_attempt_mail(session, email=normalized, base_url=base_url)
        session.commit()
        return None
    user = User(email=normalized, name=name, password_hash=password_hash)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # registered concurrently between the check and the insert
        session.rollback()
        _registration_attempt_mail(session, email=normalized, base_url=base_url)
        session.commit()
        return None
    _send_verification_mail(session, user=user, base_url=base_url)
    session.commit()
    return user


# One mail of each kind per account per minute: the forms that send them need no sign-in.
MAIL_RESEND_INTERVAL = timedelta(seconds=60)


def _mailed_recently(session: Session, user: User, purpose: EmailTokenPurpose) -> bool:
    """A link of this kind went to this account less than a minute ago (throttle, silent)."""
    newest = session.exec(
        select(EmailToken.created_at)
        .where(EmailToken.user_id == user.id, EmailToken.purpose == purpose.value)
        .order_by(EmailToken.created_at.desc())
        .limit(1)
    ).first()
    return newest is not None and utcnow() - as_utc(newest) < MAIL_RESEND_INTERVAL


def verification_resend(*, session: Session, email: str, base_url: str) -> None:
    """Send a fresh verification link (older unused ones stop working).

    Answers the same whether or not the account exists or is already verified, so it cannot
    be used to discover accounts. Owns its unit of work: commits the link with its mail.
    """
    user = _user_by_email(session, _normalize_email(email), for_update=True)
    if (
        user is not None
        and user.email_verified_at is None
        and not _mailed_recently(session, user, EmailTokenPurpose.verify_email)
    ):
        _send_verification_mail(session, user=user, base_url=base_url)
    session.commit()


def email_verify(*, session: Session, token: str) -> User:
    """Consume a verification link and mark the email verified (owns its unit of work: commits).

    Raises:
        ValidationFailed: `link_invalid`, `link_used`, `link_expired` (messages offer a resend).
    """
    row = _email_token_find(session, token=token, purpose=EmailTokenPurpose.verify_email)
    now = utcnow()
    row.used_at = now
    session.add(row)
    user = _user_get(session, row.user_id, for_update=True)
    if user.email_verified_at is None:
        user.email_verified_at = now
        session.add(user)
    session.commit()
    return user


# --- passwords ----------------------------------------------------------------------------------


def password_reset_request(*, session: Session, email: str, base_url: str) -> None:
    """Email a single-use reset link valid for 1 hour, if the account exists.

    Answers the same whether or not the account exists. A new request replaces older links.
    Owns its unit of work: commits the link with its mail.
    """
    user = _user_by_email(session, _normalize_email(email), for_update=True)
    if user is not None and not _mailed_recently(session, user, EmailTokenPurpose.reset_password):
        token = _email_token_issue(
            session, user=user, purpose=EmailTokenPurpose.reset_password, ttl=RESET_PASSWORD_TTL
        )
        link = f"{_base_url(base_url)}/reset-password?token={token}"
        mail_send(
            session=session,
            to=user.email,
            subject="Reset your Creative Studio password",
            body_text=(
                "Someone (hopefully you) asked to reset the password of your Creative Studio "
                f"account.\n\nChoose a new password here:\n\n{link}\n\n"
                "The link works once and expires in 1 hour. If you did not ask for this, ignore "
                "this email: your password stays the same.\n"
            ),
        )
    session.commit()


_background_lock = threading.Lock()
_background: ThreadPoolExecutor | None = None


def _background_executor() -> ThreadPoolExecutor:
    """One worker thread per process for mail work done off the request path."""
    global _background
    with _background_lock:
        if _background is None:
            _background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="auth-mail")
        return _background


def _password_reset_request_own(email: str, base_url: str) -> None:
    try:
        with db.new_session() as session:  # password_reset_request commits its unit of work
            password_reset_request(session=session, email=email, base_url=base_url)
    except Exception:  # nobody waits for this: log it, never lose it silently
        logger.exception("A password reset request could not be processed")


def password_reset_request_later(*, email: str, base_url: str) -> Future:
    """Queue `password_reset_request` on a background thread and return at once.

    The forgot-password page answers before anything is looked up, so the time it takes
    cannot tell whether an account exists (looking the account up, issuing the link and
    sending the mail all happen afterwards, in a unit of work of their own).

    Returns:
        The queued work (tests and tools may wait for it; the page does not).
    """
    return _background_executor().submit(
        _password_reset_request_own, (email or "")[:_MAX_EMAIL_LENGTH], base_url
    )


def background_work_wait(timeout: float = 30.0) -> None:
    """Wait until the mail work queued so far is done (tests, orderly shutdown)."""
    _background_executor().submit(lambda: None).result(timeout=timeout)


def password_reset_link_check(*, session: Session, token: str) -> None:
    """Whether a reset link can still be used, checked when its page opens (nothing changes),
    so a used, expired or broken link says so before a new password is typed.

    Raises:
        ValidationFailed: `link_invalid`, `link_used`, `link_expired`.
    """
    _email_token_find(session, token=token, purpose=EmailTokenPurpose.reset_password)


def password_reset_complete(*, session: Session, token: str, new_password: str) -> User:
    """Set a new password from a reset link; signs out every session and clears the lockout.

    The link is only consumed once the new password passes the policy, so a rejected
    password can be retried with the same link. Opening the link also proves the email.
    Owns its unit of work: commits (the reset-password page calls it with a session of its own).

    Raises:
        ValidationFailed: `link_invalid`, `link_used`, `link_expired`, `weak_password`.
    """
    row = _email_token_find(session, token=token, purpose=EmailTokenPurpose.reset_password)
    user = _user_get(session, row.user_id, for_update=True)
    password_check(password=new_password, email=user.email)
    now = utcnow()
    row.used_at = now
    session.add(row)
    user.password_hash = hash_password(new_password)
    user.failed_sign_in_count = 0
    user.locked_until = None
    if user.email_verified_at is None:
        user.email_verified_at = now
    session.add(user)
    revoked = _revoke_sessions(session, user_id=user.id, except_session_id=None)
    audit_record(
        session=session,
        action="auth.password_reset",
        actor_user_id=user.id,
        target_type="user",
        target_id=user.id,
        details={"sessions_revoked": revoked},
    )
    session.commit()
    return user


def password_change(
    *,
    session: Session,
    user_id: int,
    current_password: str,
    new_password: str,
    current_session_id: int | None,
) -> User:
    """Change the password of a signed-in user and sign out every other session.

    Every other session always ends (also sign-ins still waiting for their handoff): whoever
    knew the old password may be signed in elsewhere. Only `current_session_id` stays.

    No commit: the caller commits (Settings, through the org-page skeleton). A wrong current
    password counts toward the lockout whatever the caller then does (`services.lockout`).

    Raises:
        PermissionDenied: `invalid_credentials` when the current password is wrong.
        ValidationFailed: `weak_password`, or `password_unchanged` when it is the same.
    """
    user = _user_get(session, user_id, for_update=True)
    if not user.password_hash:
        raise error_with_code(
            Code.invalid_credentials,
            "Your account has no password yet (you sign in with Google). Set one with "
            "'Forgot password' on the sign-in page.",
            base=PermissionDenied,
        )
    password_reconfirm(
        session=session,
        user=user,
        password=current_password,
        wrong_message="Your current password is not correct, so the password was not changed. "
        "Try again, or sign out and use 'Forgot password'.",
        field="current_password",
    )
    if new_password == current_password:
        raise error_with_code(
            Code.password_unchanged,
            "The new password is the same as the current one. Choose a different password.",
            base=ValidationFailed,
            field="password",
        )
    password_check(password=new_password, email=user.email)
    user.password_hash = hash_password(new_password)
    session.add(user)
    revoked = _revoke_sessions(session, user_id=user.id, except_session_id=current_session_id)
    audit_record(
        session=session,
        action="auth.password_changed",
        actor_user_id=user.id,
        target_type="user",
        target_id=user.id,
        details={"other_sessions_revoked": revoked},
    )
    session.flush()
    return user


# --- sign-in --------------------------------------------------------------------------------------


def sign_in_password(
    *,
    session: Session,
    email: str,
    password: str,
    ip_address: str = "",
    user_agent: str = "",
    browser_binding: str = "",
) -> SignInChallenge:
    """Check email and password; on success start a pending session (handoff).

    After 5 failed attempts the account is locked for 15 minutes (`services.lockout`); an
    address without an account answers and locks the same way. With 2FA on, the failure
    counter is only reset once the second factor is also correct.

    `browser_binding` is the pre-auth cookie of the browser signing in; only that browser can
    swap the handoff code at `/auth/session` (see the module docstring). Without one, the code
    can only be activated by server code.

    Owns its unit of work on success: it commits the pending session, because the handoff
    code it returns is swapped for a cookie by another request (`/auth/session`) that must
    find it. A refusal raises without committing or rolling back; the failed attempt counts
    whatever the caller then does with its transaction.

    Returns:
        The handoff code (valid 10 minutes, single use) and whether a TOTP code must follow.

    Raises:
        DomainError: `invalid_credentials` (unknown email and wrong password alike),
            `account_locked` (message states the minutes left), `sso_required` (right
            password, but the address's organization requires single sign-on).
    """
    now = utcnow()
    normalized = _normalize_email(email)
    user = _user_by_email(session, normalized, for_update=True)
    if user is None:  # the same steps as for an account: lock check, hash check, count
        unknown_email_lock_check(session=session, email=normalized, now=now)
        verify_password(_dummy_password_hash(), password)
        password_refusal_work(_dummy_password_hash(), password)
        raise unknown_email_failed_attempt_record(session=session, email=normalized, now=now)
    lock_check(session=session, user=user, now=now)
    if not user.password_hash:  # Google-only account
        verify_password(_dummy_password_hash(), password)
        password_refusal_work(_dummy_password_hash(), password)
        raise failed_attempt_record(session=session, user=user, now=now)
    if not verify_password(user.password_hash, password):
        # Refusals cost the same for any address, whichever parameters its hash has.
        password_refusal_work(user.password_hash, password)
        raise failed_attempt_record(session=session, user=user, now=now)
    # "Require SSO" of the organization that verified this address's domain (services.sso
    # imports this module, hence the late import).
    from services.sso import password_sign_in_check

    password_sign_in_check(session=session, user=user)
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    mfa_required = user.totp_enabled_at is not None
    if not mfa_required:
        failed_attempts_clear(session=session, user=user)
    session.add(user)
    handoff_code = new_token(32)
    session.add(
        UserSession(
            user_id=user.id,
            token_hash=hash_token(handoff_code),
            mfa_pending=mfa_required,
            ip_address=(ip_address or "")[:64],
            user_agent=(user_agent or "")[:500],
            expires_at=now + timedelta(minutes=HANDOFF_MINUTES),
            browser_binding_hash=_browser_binding_hash(browser_binding),
        )
    )
    session.commit()
    return SignInChallenge(user_id=user.id, handoff_code=handoff_code, mfa_required=mfa_required)


def sign_in_handoff_create(
    *,
    session: Session,
    user: User,
    ip_address: str = "",
    user_agent: str = "",
    browser_binding: str = "",
) -> SignInChallenge:
    """Start a pending session (handoff) for a user proven by another factor, e.g. Google.

    No commit: the caller owns the transaction. With 2FA on, the TOTP code must still follow.
    `browser_binding`: the pre-auth cookie of the browser signing in (see `sign_in_password`).

    Raises:
        DomainError: `account_locked` (nothing is written; the caller rolls back).
    """
    now = utcnow()
    lock_check(session=session, user=user, now=now)
    mfa_required = user.totp_enabled_at is not None
    if not mfa_required:
        failed_attempts_clear(session=session, user=user)
    handoff_code = new_token(32)
    session.add(
        UserSession(
            user_id=user.id,
            token_hash=hash_token(handoff_code),
            mfa_pending=mfa_required,
            ip_address=(ip_address or "")[:64],
            user_agent=(user_agent or "")[:500],
            expires_at=now + timedelta(minutes=HANDOFF_MINUTES),
            browser_binding_hash=_browser_binding_hash(browser_binding),
        )
    )
    session.flush()
    return SignInChallenge(user_id=user.id, handoff_code=handoff_code, mfa_required=mfa_required)


def _pending_sign_in(session: Session, handoff_code: str) -> UserSession:
    """The not-yet-activated session for a handoff code, locked; raises sign_in_expired."""
    row = None
    if handoff_code:
        row = session.exec(
            select(UserSession)
            .where(_token_hash_in(UserSession.token_hash, handoff_code))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
    if (
        row is None
        or row.activated_at is not None
        or row.revoked_at is not None
        or as_utc(row.expires_at) <= utcnow()
    ):
        raise error_with_code(
            Code.sign_in_expired,
            "This sign-in attempt has expired or was already used. Sign in again with your "
            "email and password.",
            http_status=401,
        )
    return row


def sign_in_complete_mfa(*, session: Session, handoff_code: str, code: str) -> None:
    """Second step of sign-in with 2FA: a TOTP code or an unused recovery code.

    Wrong codes count as failed sign-ins (lockout after 5, which also ends this attempt).
    No commit: the caller commits (the sign-in page does, also after a refusal); the failed
    attempt counts whatever it decides (`services.lockout`).

    Raises:
        DomainError: `totp_required` (no code entered), `totp_invalid`, `account_locked`,
            `sign_in_expired`.
    """
    pending = _pending_sign_in(session, handoff_code)
    if not pending.mfa_pending:
        return
    if not (code or "").strip():
        raise error_with_code(
            Code.totp_required,
            "Enter the 6-digit code from your authenticator app, or one of your recovery codes.",
            base=ValidationFailed,
            field="code",
        )
    now = utcnow()
    user = _user_get(session, pending.user_id, for_update=True)
    lock_check(session=session, user=user, now=now)
    if not totp_verify(session=session, user=user, code=code):
        error = failed_attempt_record(session=session, user=user, now=now)
        if error.code == Code.account_locked:
            # The lock also ends this attempt. Should the caller roll this back, the lock
            # (15 minutes) still outlasts the handoff code (10 minutes).
            pending.revoked_at = now
            session.add(pending)
            session.flush()
            raise error
        raise error_with_code(
            Code.totp_invalid,
            "That code is not correct or was already used. Enter the current 6-digit code from "
            "your authenticator app, or an unused recovery code.",
            base=ValidationFailed,
            field="code",
        )
    failed_attempts_clear(session=session, user=user)
    pending.mfa_pending = False
    session.add(pending)
    session.flush()


def session_activate(
    *, session: Session, handoff_code: str, browser_binding: str | None = None
) -> tuple[str, UserSession]:
    """Swap a handoff code for a long-lived session token (once).

    No commit: the caller commits (the `/auth/session` route) before it sets the cookie.

    Args:
        browser_binding: The pre-auth cookie of the request. HTTP routes always pass it (""
            when the request has none): the code is then swapped only for the browser that
            started the sign-in. None is for server code that hands the session over itself.

    Returns:
        The raw session token (for an HttpOnly cookie; only its hash is stored) and the row.

    Raises:
        DomainError: `sign_in_expired` (unknown, used, expired or revoked code),
            `sign_in_other_browser` (another browser started this sign-in; nothing changes),
            `totp_required` (2FA not completed yet).
    """
    pending = _pending_sign_in(session, handoff_code)
    if browser_binding is not None and not browser_binding_matches(
        pending.browser_binding_hash, browser_binding
    ):
        raise sign_in_other_browser_error()
    if pending.mfa_pending:
        raise error_with_code(
            Code.totp_required,
            "Two-factor authentication is on for this account. Enter the code from your "
            "authenticator app to finish signing in.",
            http_status=401,
        )
    now = utcnow()
    token = new_token(SESSION_TOKEN_BYTES)
    pending.token_hash = hash_token(token)
    pending.activated_at = now
    pending.last_seen_at = now
    pending.expires_at = now + timedelta(days=get_settings().session_absolute_days)
    session.add(pending)
    user = _user_get(session, pending.user_id)
    user.last_active_at = now
    session.add(user)
    session.flush()
    return token, pending


def sign_in_landing_path(*, session: Session, user_id: int) -> str:
    """Where a sign-in that asked for no page lands: the Studio of the user's first organization.

    The rule of `/` (`SessionState.go_home`): the first organization by name, as the switcher
    lists them. The `/auth/session` route redirects there at once rather than to `/`, whose
    page would load, connect its websocket and only then send the browser on (one more round
    before the Studio). Without an organization it is `/` itself, which sends platform staff to
    the console and anyone else to create an organization (static pages that the server would
    first redirect to their address with a trailing slash).
    """
    memberships = orgs_for_user(session=session, user_id=user_id)
    if memberships:
        return routes.org_home(memberships[0][0].slug)
    return routes.INDEX


# --- sessions -----------------------------------------------------------------------------------


def _session_is_live(user_session: Any, now: datetime) -> bool:
    """`user_session`: a UserSession, or a row with its columns (`identity_facts`)."""
    if user_session.revoked_at is not None or user_session.activated_at is None:
        return False
    if user_session.mfa_pending or as_utc(user_session.expires_at) <= now:
        return False
    last_seen = as_utc(user_session.last_seen_at or user_session.activated_at)
    idle_limit = timedelta(minutes=get_settings().session_idle_minutes)
    return now - last_seen <= idle_limit


# The session behind a cookie and its person, read as plain columns by one prebuilt statement
# (its cache key is computed once, not per read): every page event resolves it.
_SESSION_AND_USER = (
    select(*db.loaded_columns(UserSession, User))
    .join_from(UserSession, User, col(User.id) == col(UserSession.user_id))
    .where(col(UserSession.token_hash).in_(bindparam("hashes", expanding=True)))
    .limit(1)
)


def session_resolve(*, session: Session, token: str) -> tuple[User, UserSession] | None:
    """The user and session behind a session cookie, or None when it no longer counts.

    None when unknown, revoked, not activated, past its absolute expiry, or idle for longer
    than SESSION_IDLE_MINUTES. Records activity at most once a minute. A session whose token
    was hashed under a previous SECRET_KEY is found, and re-hashed under the current one.

    Owns the activity touch: when it records activity it commits at once (the idle timeout
    depends on it, and read-only callers such as page loads never commit). Call it first in a
    unit of work, before anything else is written.
    """
    if not token:
        return None
    row = session.execute(_SESSION_AND_USER, {"hashes": token_hash_candidates(token)}).first()
    if row is None:
        return None
    user_session, user = db.attach_row(session, (UserSession, User), row)
    now = utcnow()
    if not _session_is_live(user_session, now):
        return None
    current_hash = hash_token(token)
    hashed_under_old_key = user_session.token_hash != current_hash
    last_seen = as_utc(user_session.last_seen_at)
    if last_seen is None or (now - last_seen).total_seconds() >= SESSION_TOUCH_SECONDS:
        user_session.last_seen_at = now
        user.last_active_at = now
        session.add(user)
    elif not hashed_under_old_key:
        return user, user_session
    if hashed_under_old_key:  # SECRET_KEY was rotated: move this session to the new key
        user_session.token_hash = current_hash
    session.add(user_session)
    session.commit()
    return user, user_session


# Everything "who acts in this organization" rests on, for the session behind a cookie and the
# organization at an address, in one prebuilt statement: the session's state, the person, their
# memberships, the organization, their membership in it, its 2FA requirement, its subscription
# and whether a connection needs reconnecting. The session's last use is read last, for the
# idle check only (it changes once a minute and is not a fact).
_ANY_MEMBERSHIP = aliased(Membership)
_IDENTITY_FACTS = (
    select(
        col(UserSession.id).label("session_id"),
        col(UserSession.revoked_at),
        col(UserSession.activated_at),
        col(UserSession.mfa_pending),
        col(UserSession.expires_at),
        col(User.id).label("user_id"),
        col(User.name),
        col(User.email),
        col(User.email_verified_at),
        col(User.is_operator),
        col(User.totp_enabled_at),
        # Joining or leaving an organization changes the switcher: their count and newest id.
        select(func.count()).where(_ANY_MEMBERSHIP.user_id == User.id).scalar_subquery(),
        select(func.max(_ANY_MEMBERSHIP.id))
        .where(_ANY_MEMBERSHIP.user_id == User.id)
        .scalar_subquery(),
        col(Organization.id).label("org_id"),
        col(Organization.name).label("org_name"),
        col(Organization.plan_key),
        col(Organization.deleted_at),
        col(Membership.id).label("membership_id"),
        col(Membership.role),
        col(Membership.project_scoped),
        col(OrgSecurity.require_2fa),
        col(Subscription.status),
        col(Subscription.plan_key).label("subscription_plan_key"),
        exists()
        .where(
            OAuthConnection.org_id == Organization.id,
            OAuthConnection.status == ConnectionStatus.expired.value,
        )
        .label("connection_expired"),
        col(UserSession.last_seen_at),
    )
    .select_from(UserSession)
    .join(User, col(User.id) == col(UserSession.user_id))
    .join(Organization, col(Organization.slug) == bindparam("slug"))
    .outerjoin(
        Membership,
        and_(
            col(Membership.org_id) == col(Organization.id), col(Membership.user_id) == col(User.id)
        ),
    )
    .outerjoin(OrgSecurity, col(OrgSecurity.org_id) == col(Organization.id))
    .outerjoin(Subscription, col(Subscription.org_id) == col(Organization.id))
    .where(col(UserSession.token_hash).in_(bindparam("hashes", expanding=True)))
    .limit(1)
)


def identity_facts(*, session: Session, token: str, slug: str) -> tuple | None:
    """What "who acts in the organization at `slug`" rests on for the session behind `token`,
    read in one statement: equal facts mean an earlier full resolution still holds. None when
    the session no longer counts (as `session_resolve` decides) or there is no such address."""
    if not token or not slug:
        return None
    row = (
        session.connection()
        .execute(_IDENTITY_FACTS, {"hashes": token_hash_candidates(token), "slug": slug})
        .first()
    )
    if row is None or not _session_is_live(row, utcnow()):
        return None
    return tuple(row)[:-1]


def sessions_list(*, session: Session, user_id: int) -> list[UserSession]:
    """The user's signed-in sessions that still count, most recently used first."""
    now = utcnow()
    rows = session.exec(
        select(UserSession).where(
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),  # type: ignore[union-attr]
            UserSession.activated_at.is_not(None),  # type: ignore[union-attr]
        )
    ).all()
    live = [row for row in rows if _session_is_live(row, now)]
    return sorted(live, key=lambda row: as_utc(row.last_seen_at or row.activated_at), reverse=True)


def session_revoke(*, session: Session, user_id: int, session_id: int) -> None:
    """Sign out one session of this user (signing out, or ending a device from Settings).

    Owns its unit of work: commits, so the sign-out is final at once; the cookie route that
    the sign-out event navigates to next (another request) must find the session ended.

    Raises:
        NotFound: when the session does not exist or belongs to someone else.
    """
    user_session = session.exec(
        select(UserSession)
        .where(UserSession.id == session_id, UserSession.user_id == user_id)
        .with_for_update()
    ).first()
    if user_session is None:
        raise NotFound(
            "That session was not found; it may have ended already. Refresh the list of sessions."
        )
    if user_session.revoked_at is None:
        user_session.revoked_at = utcnow()
        session.add(user_session)
    session.commit()


def sessions_revoke_all(
    *, session: Session, user_id: int, except_session_id: int | None = None
) -> int:
    """Sign out everywhere (optionally keeping the current session); returns how many ended.

    No commit: the caller commits (the Settings page).
    """
    count = _revoke_sessions(session, user_id=user_id, except_session_id=except_session_id)
    audit_record(
        session=session,
        action="auth.sessions_revoked_all",
        actor_user_id=user_id,
        target_type="user",
        target_id=user_id,
        details={"revoked": count, "kept_session_id": except_session_id},
    )
    session.flush()
    return count
