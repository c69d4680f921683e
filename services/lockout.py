"""Account lockout: failed sign-in attempts, the 15-minute lock, and password re-confirmation.

Below both `services.auth` (password sign-in, the second step of 2FA, password change) and
`services.totp` (2FA settings that ask for the password again), which import it; it imports
neither of them.

Rules
-----
* 5 failed attempts in a row lock the account for 15 minutes. The error while locked says
  how many minutes are left. Once a lock has run out, counting starts afresh.
* An address without an account locks exactly the same way, so neither the answer nor the
  lock tells whether an account exists. Its attempts are counted in `sign_in_throttles`,
  keyed by the address's keyed hash (the address itself is not stored); they never touch an
  account's counter, so nobody can lock a real account faster than the rule above.
* A failed attempt is counted exactly once, whatever the caller then does with its
  transaction: the sign-in raises, and the caller normally rolls back, yet the count must
  persist (otherwise a password could be guessed without limit).
* Concurrent failures of one account each count: the count is one conditional UPDATE
  (``failed_sign_in_count = failed_sign_in_count + 1``, or 1 after an expired lock), which
  PostgreSQL serializes on the row; SQLite serializes every writer anyway.

Transactions
------------
The code that opens a unit of work commits it; the functions here receive the caller's
session and never commit or roll back behind it. `failed_attempt_record` writes the attempt
in the caller's transaction (so the caller sees it at once, and no second writer waits on a
row or a database the caller has locked), and if that transaction ends without a commit
(the usual rollback after a refusal), it writes the attempt again in its own unit of work
(`core.db.session_scope()`), after the caller's locks are gone. A commit by the caller keeps
the first write; the second never happens. Either way the attempt counts once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import and_, case, event, null, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from core import db
from core.clock import as_utc, utcnow
from core.crypto import hash_token, verify_password
from models import SignInThrottle, User
from services.error_codes import Code
from services.errors import DomainError, PermissionDenied, error_with_code

MAX_FAILED_SIGN_INS = 5
LOCKOUT_MINUTES = 15

INVALID_CREDENTIALS_MESSAGE = (
    "The email or password is not correct. Check both and try again, or reset your password."
)

logger = logging.getLogger(__name__)


def invalid_credentials_error() -> DomainError:
    """The one answer for an unknown email and a wrong password alike."""
    return error_with_code(Code.invalid_credentials, INVALID_CREDENTIALS_MESSAGE, http_status=401)


def account_locked_error(locked_until: datetime, now: datetime) -> DomainError:
    """`account_locked`, with the minutes left in the message and the details."""
    minutes = max(1, math.ceil((locked_until - now).total_seconds() / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return error_with_code(
        Code.account_locked,
        f"Too many failed sign-ins. Try again in {minutes} {unit}, or reset your password.",
        http_status=429,
        minutes_left=minutes,
        locked_until=locked_until.isoformat(),
    )


def lock_check(*, session: Session, user: User, now: datetime) -> None:
    """Refuse a locked account; forget a lock that has run out (in the caller's transaction).

    Raises:
        DomainError: `account_locked` while the lock lasts (nothing is written).
    """
    locked_until = as_utc(user.locked_until)
    if locked_until is not None and locked_until > now:
        raise account_locked_error(locked_until, now)
    if locked_until is not None:  # the lock ran out: start counting afresh
        user.locked_until = None
        user.failed_sign_in_count = 0
        session.add(user)


def failed_attempts_clear(*, session: Session, user: User) -> None:
    """A successful sign-in resets the count (in the caller's transaction)."""
    user.failed_sign_in_count = 0
    user.locked_until = None
    session.add(user)


def _count_failure(session: Session, user_id: int, now: datetime) -> None:
    """One conditional UPDATE: +1, or 1 after an expired lock; the 5th failure locks."""
    lock_ran_out = and_(User.locked_until.is_not(None), User.locked_until <= now)
    new_count = case((lock_ran_out, 1), else_=User.failed_sign_in_count + 1)
    session.execute(
        update(User)
        .where(User.id == user_id)
        .values(
            failed_sign_in_count=new_count,
            locked_until=case(
                (new_count >= MAX_FAILED_SIGN_INS, now + timedelta(minutes=LOCKOUT_MINUTES)),
                (lock_ran_out, None),
                else_=User.locked_until,
            ),
        )
        .execution_options(synchronize_session=False)
    )


def _throttle_key(email: str) -> str:
    """The keyed hash that stands for an address without an account (never the address)."""
    return hash_token("sign-in-throttle:" + email)


def _count_unknown_failure(session: Session, email_hash: str, now: datetime) -> None:
    """One upsert: a first failure inserts 1; later ones +1, or 1 after an expired lock."""
    table = SignInThrottle.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    lock_ran_out = and_(table.c.locked_until.is_not(None), table.c.locked_until <= now)
    new_count = case((lock_ran_out, 1), else_=table.c.failed_sign_in_count + 1)
    statement = insert(table).values(
        email_hash=email_hash,
        failed_sign_in_count=1,
        locked_until=None,
        created_at=now,
        last_failed_at=now,
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.email_hash],
            set_={
                "failed_sign_in_count": new_count,
                "locked_until": case(
                    (new_count >= MAX_FAILED_SIGN_INS, now + timedelta(minutes=LOCKOUT_MINUTES)),
                    (lock_ran_out, null()),
                    else_=table.c.locked_until,
                ),
                "last_failed_at": now,
            },
        )
    )


_UNCOMMITTED = (
    "lockout.uncommitted_failures"  # session.info key: [(root transaction, recount, what)]
)


def _forget_committed(session: Session) -> None:
    """after_commit: attempts written in the transaction that just committed are stored."""
    if session.in_nested_transaction():
        return  # a savepoint was released, not the transaction
    root = session.get_transaction()
    waiting = session.info.get(_UNCOMMITTED, [])
    waiting[:] = [entry for entry in waiting if entry[0] is not root]


def _count_after_rollback(session: Session, transaction) -> None:
    """after_transaction_end: count again, in a unit of work of its own, every attempt whose
    transaction ended without a commit (its locks are released by now)."""
    waiting = session.info.get(_UNCOMMITTED, [])
    lost = [entry for entry in waiting if entry[0] is transaction]
    if not lost:
        return
    waiting[:] = [entry for entry in waiting if entry[0] is not transaction]
    for _root, recount, what in lost:
        try:
            with db.session_scope() as own:
                recount(own)
        except Exception:  # never fail the caller's rollback over it
            logger.exception("Could not record a failed sign-in attempt of %s", what)


def _count_again_unless_committed(
    session: Session, recount: Callable[[Session], None], what: str
) -> None:
    """Remember the attempt until the caller's transaction ends (see the module docstring)."""
    if not event.contains(session, "after_transaction_end", _count_after_rollback):
        event.listen(session, "after_commit", _forget_committed)
        event.listen(session, "after_transaction_end", _count_after_rollback)
    session.info.setdefault(_UNCOMMITTED, []).append((session.get_transaction(), recount, what))


def failed_attempt_record(*, session: Session, user: User, now: datetime) -> DomainError:
    """Count one failed attempt of `user`; returns the error to raise.

    The attempt is written in the caller's transaction and, if that transaction is not
    committed, again in a unit of work of its own (see the module docstring): it counts once
    either way. `user` is refreshed with the stored count and lock.

    Returns:
        `account_locked` when this attempt reached the limit, else `invalid_credentials`.
    """
    user_id = user.id
    _count_failure(session, user_id, now)
    _count_again_unless_committed(
        session, lambda own: _count_failure(own, user_id, now), f"user {user_id}"
    )
    stored = session.exec(
        select(User).where(User.id == user.id).execution_options(populate_existing=True)
    ).one()
    locked_until = as_utc(stored.locked_until)
    if locked_until is not None and locked_until > now:
        return account_locked_error(locked_until, now)
    return invalid_credentials_error()


def unknown_email_lock_check(*, session: Session, email: str, now: datetime) -> None:
    """Refuse an address without an account while it is locked, exactly like an account.

    Args:
        email: The normalized address that matched no account.

    Raises:
        DomainError: `account_locked` while the lock lasts (nothing is written).
    """
    throttle = session.exec(
        select(SignInThrottle).where(SignInThrottle.email_hash == _throttle_key(email))
    ).first()
    locked_until = as_utc(throttle.locked_until) if throttle is not None else None
    if locked_until is not None and locked_until > now:
        raise account_locked_error(locked_until, now)


def unknown_email_failed_attempt_record(
    *, session: Session, email: str, now: datetime
) -> DomainError:
    """Count one failed attempt for an address without an account; returns the error to raise.

    Counted once whatever the caller does with its transaction, as `failed_attempt_record`.

    Returns:
        `account_locked` when this attempt reached the limit, else `invalid_credentials`:
        the same answers, with the same timing of the lock, as for an account.
    """
    email_hash = _throttle_key(email)
    _count_unknown_failure(session, email_hash, now)
    _count_again_unless_committed(
        session,
        lambda own: _count_unknown_failure(own, email_hash, now),
        "an address without an account",
    )
    stored = session.exec(
        select(SignInThrottle)
        .where(SignInThrottle.email_hash == email_hash)
        .execution_options(populate_existing=True)
    ).one()
    locked_until = as_utc(stored.locked_until)
    if locked_until is not None and locked_until > now:
        return account_locked_error(locked_until, now)
    return invalid_credentials_error()


def password_reconfirm(
    *, session: Session, user: User, password: str, wrong_message: str, field: str = "password"
) -> None:
    """Check a re-entered password (sensitive changes from a signed-in session).

    Wrong answers count toward the same lockout as sign-in, so a stolen session cannot be
    used to guess the password without limit.

    Raises:
        DomainError: `account_locked` while locked; `invalid_credentials` with `wrong_message`.
    """
    now = utcnow()
    lock_check(session=session, user=user, now=now)
    if verify_password(user.password_hash, password):
        return
    error = failed_attempt_record(session=session, user=user, now=now)
    if error.code == Code.account_locked:
        raise error
    raise error_with_code(
        Code.invalid_credentials, wrong_message, base=PermissionDenied, field=field
    )


__all__ = [
    "INVALID_CREDENTIALS_MESSAGE",
    "LOCKOUT_MINUTES",
    "MAX_FAILED_SIGN_INS",
    "account_locked_error",
    "failed_attempt_record",
    "failed_attempts_clear",
    "invalid_credentials_error",
    "lock_check",
    "password_reconfirm",
    "unknown_email_failed_attempt_record",
    "unknown_email_lock_check",
]
