"""The audit chain lock cannot deadlock with credit movements on PostgreSQL.

One transaction writes an audit entry and then moves credits (account row lock); another moves
credits and then writes an audit entry. With the chain lock taken where the entry is written
they would wait on each other; the chain is linked at commit instead, so both always finish.
A control run takes the chain lock the old way and shows the same interleaving deadlocks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from core.settings import get_settings, reset_settings_cache
from models import AuditLogEntry
from services import audit, credits
from services.audit import audit_record, audit_verify
from tests.conftest import requires_postgres
from tests.factories import make_org, make_user

pytestmark = [requires_postgres, pytest.mark.postgres]

ROUNDS = 40


def _two_orders(engine, org_id: int, user_id: int, round_: int, *, eager_lock: bool):
    """Run "audit then credits" and "credits then audit" at once, both halfway before either
    goes on (so each holds what it took first). Returns the errors raised."""
    halfway = threading.Barrier(2)
    errors: list[BaseException] = []

    def audit_step(session: Session, step: str) -> None:
        if eager_lock:  # what audit_record did before: lock the chain where the entry is written
            audit._lock_chain(session, org_id)
        audit_record(
            session=session,
            action="test.order",
            actor_user_id=user_id,
            org_id=org_id,
            details={"round": round_, "step": step},
        )

    def credit_step(session: Session, step: str) -> None:
        credits.credits_grant(
            session=session,
            org_id=org_id,
            amount_millicredits=1_000,
            idempotency_key=f"order-{eager_lock}-{round_}-{step}",
        )

    def worker(first: Callable, second: Callable, step: str) -> None:
        with Session(engine) as session:
            try:
                first(session, step)
                try:
                    halfway.wait(timeout=5)
                except threading.BrokenBarrierError:
                    pass
                second(session, step)
                session.commit()
            except Exception as error:  # noqa: BLE001 - the test compares what was raised
                session.rollback()
                halfway.abort()
                errors.append(error)

    threads = [
        threading.Thread(target=worker, args=(audit_step, credit_step, "audit-first")),
        threading.Thread(target=worker, args=(credit_step, audit_step, "credits-first")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.fixture
def org(pg_engine):
    owner = make_user(pg_engine, "olivia@acme.test", "Olivia Owner")
    return make_org(pg_engine, owner, "Acme Marketing", credits=10_000)


def test_audit_then_credits_and_credits_then_audit_never_deadlock(pg_engine, org):
    with Session(pg_engine) as session:
        before = credits.balance_get(session=session, org_id=org.id).balance
    for round_ in range(ROUNDS):
        errors = _two_orders(pg_engine, org.id, None, round_, eager_lock=False)
        assert errors == [], f"round {round_}: {errors!r}"
    with Session(pg_engine) as session:
        written = session.exec(
            select(func.count())
            .select_from(AuditLogEntry)
            .where(AuditLogEntry.action == "test.order")
        ).one()
        assert written == 2 * ROUNDS
        check = audit_verify(session=session, org_id=org.id)
        assert check.ok and check.unsealed == 0, check.message
        assert (
            credits.balance_get(session=session, org_id=org.id).balance == before + 2_000 * ROUNDS
        )


def test_control_locking_the_chain_where_the_entry_is_written_deadlocks(pg_engine, org):
    errors = _two_orders(pg_engine, org.id, None, 0, eager_lock=True)
    assert errors and all(isinstance(error, OperationalError) for error in errors), errors
    assert "deadlock detected" in str(errors[0])


def test_entries_hashed_before_a_key_rotation_still_verify(pg_engine, org, monkeypatch):
    def write(count):
        with Session(pg_engine) as session:
            for index in range(count):
                audit_record(
                    session=session,
                    action="test.rotation",
                    actor_user_id=None,
                    org_id=org.id,
                    details={"index": index},
                )
            session.commit()

    def verify():
        with Session(pg_engine) as session:
            return audit_verify(session=session, org_id=org.id)

    old, new = get_settings().secret_key, "new-secret-Pk3x9vL2mW7nB4tR8yC1hF6jD0sG5e-audit"
    try:
        write(2)  # with the key the organization's first entry was hashed with
        monkeypatch.setenv("SECRET_KEY", new)
        monkeypatch.setenv("SECRET_KEY_PREVIOUS", old)
        reset_settings_cache()
        write(2)
        assert verify().ok
        monkeypatch.setenv("SECRET_KEY_PREVIOUS", "")  # the old key dropped too early
        reset_settings_cache()
        check = verify()
        assert not check.ok and "SECRET_KEY_PREVIOUS" in check.message
    finally:
        monkeypatch.undo()
        reset_settings_cache()
