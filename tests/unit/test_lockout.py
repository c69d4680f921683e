"""Failed attempts count once, whatever the caller does with its transaction (services/lockout.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlmodel import Session

from core import clock, crypto, db
from models import User
from services.auth import sign_in_complete_mfa, sign_in_password
from services.errors import DomainError
from services.lockout import LOCKOUT_MINUTES, MAX_FAILED_SIGN_INS, password_reconfirm
from services.totp import totp_begin_enrolment, totp_confirm_enrolment, totp_current_code

PASSWORD = "velvet-harbor-kettle-92"
WRONG = "wrong-password-123"
START = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch):
    monkeypatch.setattr(
        crypto, "_password_hasher", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    )


@pytest.fixture(autouse=True)
def _frozen_clock():
    clock.freeze(START)


@pytest.fixture
def user_id(engine) -> int:
    with db.session_scope() as session:
        user = User(
            email="ana@example.com", name="Ana", password_hash=crypto.hash_password(PASSWORD)
        )
        session.add(user)
        session.flush()
        return user.id


def _stored(user_id: int) -> tuple[int, datetime | None]:
    with db.new_session() as session:
        user = session.get(User, user_id)
        return user.failed_sign_in_count, clock.as_utc(user.locked_until)


def _refused(call, **kwargs) -> DomainError:
    """Call a service in a unit of work that rolls back on the refusal, as the pages do."""
    with db.new_session() as session:
        with pytest.raises(DomainError) as caught:
            call(session=session, **kwargs)
        session.rollback()
    return caught.value


def test_a_failed_sign_in_counts_although_the_caller_rolls_back(user_id):
    error = _refused(sign_in_password, email="ana@example.com", password=WRONG)
    assert error.code == "invalid_credentials"
    assert _stored(user_id) == (1, None)


def test_five_rolled_back_failures_lock_for_15_minutes(user_id):
    for _ in range(MAX_FAILED_SIGN_INS - 1):
        _refused(sign_in_password, email="ana@example.com", password=WRONG)
    fifth = _refused(sign_in_password, email="ana@example.com", password=WRONG)
    assert fifth.code == "account_locked" and fifth.details["minutes_left"] == LOCKOUT_MINUTES
    assert _stored(user_id) == (5, START + timedelta(minutes=LOCKOUT_MINUTES))
    locked = _refused(sign_in_password, email="ana@example.com", password=PASSWORD)
    assert locked.code == "account_locked"


def test_a_committed_failure_counts_once_not_twice(user_id):
    with db.new_session() as session:
        with pytest.raises(DomainError):
            sign_in_password(session=session, email="ana@example.com", password=WRONG)
        session.commit()  # the sign-in page commits after a refusal
    assert _stored(user_id) == (1, None)


def test_a_session_closed_without_rollback_still_counts(user_id):
    with pytest.raises(DomainError):
        with db.new_session() as session:
            sign_in_password(session=session, email="ana@example.com", password=WRONG)
    assert _stored(user_id) == (1, None)


def test_after_a_lock_runs_out_a_rolled_back_failure_counts_afresh(user_id):
    for _ in range(MAX_FAILED_SIGN_INS):
        _refused(sign_in_password, email="ana@example.com", password=WRONG)
    clock.freeze(START + timedelta(minutes=LOCKOUT_MINUTES + 1))
    assert _refused(sign_in_password, email="ana@example.com", password=WRONG).code == (
        "invalid_credentials"
    )
    assert _stored(user_id) == (1, None)


def test_a_wrong_reconfirmed_password_counts_although_the_caller_rolls_back(user_id):
    def reconfirm(*, session: Session, password: str):
        password_reconfirm(
            session=session,
            user=session.get(User, user_id),
            password=password,
            wrong_message="That password is not correct.",
        )

    for _ in range(MAX_FAILED_SIGN_INS - 1):
        assert _refused(reconfirm, password=WRONG).message == "That password is not correct."
    assert _refused(reconfirm, password=WRONG).code == "account_locked"
    assert _refused(reconfirm, password=PASSWORD).code == "account_locked"
    assert _stored(user_id)[0] == MAX_FAILED_SIGN_INS


def test_a_wrong_second_factor_counts_although_the_caller_rolls_back(user_id):
    with db.session_scope() as session:
        secret = totp_begin_enrolment(session=session, user_id=user_id).secret
        totp_confirm_enrolment(session=session, user_id=user_id, code=totp_current_code(secret))
    clock.freeze(START + timedelta(minutes=5))
    with db.new_session() as session:
        challenge = sign_in_password(session=session, email="ana@example.com", password=PASSWORD)
    wrong = "000000" if totp_current_code(secret) != "000000" else "111111"
    error = _refused(sign_in_complete_mfa, handoff_code=challenge.handoff_code, code=wrong)
    assert error.code == "totp_invalid"
    assert _stored(user_id) == (1, None)
