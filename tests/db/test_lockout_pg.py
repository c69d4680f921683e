"""Concurrent failed sign-ins on PostgreSQL: each counts once, whether the caller rolls back
or commits, and the fifth locks the account (services/lockout.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import clock, crypto
from models import User
from services.auth import sign_in_password
from services.errors import DomainError
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.postgres]

PASSWORD = "velvet-harbor-kettle-92"
WRONG = "wrong-password-123"


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch):
    monkeypatch.setattr(
        crypto, "_password_hasher", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    )


def _user(engine: Engine) -> int:
    with Session(engine) as session:
        user = User(
            email="ana@example.com", name="Ana", password_hash=crypto.hash_password(PASSWORD)
        )
        session.add(user)
        session.commit()
        return user.id


def _wrong_sign_ins(engine: Engine, count: int, *, commit: bool) -> list[str]:
    """`count` wrong passwords at once, each in its own session; the caller rolls back (or
    commits) after the refusal. Returns the error codes."""
    barrier = threading.Barrier(count)

    def attempt(_index: int) -> str:
        with Session(engine, expire_on_commit=False) as session:
            barrier.wait(timeout=30)
            try:
                sign_in_password(session=session, email="ana@example.com", password=WRONG)
            except DomainError as error:
                session.commit() if commit else session.rollback()
                return error.code
        return "signed_in"

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(attempt, range(count)))


def _stored(engine: Engine, user_id: int) -> User:
    with Session(engine) as session:
        return session.get(User, user_id)


@pytest.mark.parametrize("commit", [False, True], ids=["caller-rolls-back", "caller-commits"])
def test_four_concurrent_failures_count_four(pg_engine, commit):
    user_id = _user(pg_engine)
    codes = _wrong_sign_ins(pg_engine, 4, commit=commit)
    assert codes == ["invalid_credentials"] * 4
    stored = _stored(pg_engine, user_id)
    assert stored.failed_sign_in_count == 4 and stored.locked_until is None

    fifth = _wrong_sign_ins(pg_engine, 1, commit=commit)
    assert fifth == ["account_locked"]
    stored = _stored(pg_engine, user_id)
    assert stored.failed_sign_in_count == 5
    assert clock.as_utc(stored.locked_until) > clock.utcnow()
