"""Daily caps on PostgreSQL: atomic across concurrent workers, given back exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from core.clock import freeze
from services.caps import Cap, DailyCapReached, cap_release, cap_status, cap_take
from tests.conftest import requires_postgres
from tests.db.test_credits_concurrency import run_parallel
from tests.factories import make_org, make_user

pytestmark = [requires_postgres, pytest.mark.postgres]


def _org_at(pg_engine, used: int, plan_key: str = "free"):
    with Session(pg_engine, expire_on_commit=False) as session:
        org = make_org(session, make_user(session, "owner@example.com"), plan_key=plan_key)
        for index in range(used):
            cap_take(
                session=session,
                org_id=org.id,
                cap=Cap.assistant_messages,
                idempotency_key=f"seed-{index}",
            )
        session.commit()
    return org


def test_fifty_concurrent_sends_at_cap_minus_one_accept_exactly_one(pg_engine):
    freeze(datetime(2026, 11, 26, 15, 0, tzinfo=UTC))
    org = _org_at(pg_engine, used=19)  # Free: 20 messages a day

    def send(index):
        return lambda session: cap_take(
            session=session,
            org_id=org.id,
            cap=Cap.assistant_messages,
            idempotency_key=f"send-{index}",
        )

    results = run_parallel(pg_engine, [send(index) for index in range(50)])
    accepted = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, DailyCapReached)]
    assert len(accepted) == 1 and len(refused) == 49
    assert all(r.used == 20 and r.allowed == 20 for r in refused)
    with Session(pg_engine) as session:
        assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 20


def test_same_key_from_many_workers_counts_once(pg_engine):
    org = _org_at(pg_engine, used=0)
    results = run_parallel(
        pg_engine,
        [
            lambda session: cap_take(
                session=session, org_id=org.id, cap=Cap.assistant_messages, idempotency_key="one"
            )
        ]
        * 10,
    )
    assert not [r for r in results if isinstance(r, Exception)]
    with Session(pg_engine) as session:
        assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 1


def test_concurrent_give_backs_of_one_failed_message_return_one_unit(pg_engine):
    org = _org_at(pg_engine, used=5)
    results = run_parallel(
        pg_engine,
        [lambda session: cap_release(session=session, idempotency_key="seed-0")] * 10,
    )
    assert results.count(True) == 1 and results.count(False) == 9
    with Session(pg_engine) as session:
        assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 4


def test_first_use_of_the_day_from_many_workers_creates_one_counter(pg_engine):
    org = _org_at(pg_engine, used=0, plan_key="scale")

    def send(index):
        return lambda session: cap_take(
            session=session, org_id=org.id, cap=Cap.tool_runs, idempotency_key=f"t-{index}"
        )

    results = run_parallel(pg_engine, [send(index) for index in range(20)])
    assert not [r for r in results if isinstance(r, Exception)]
    with Session(pg_engine) as session:
        assert cap_status(session=session, org_id=org.id, cap=Cap.tool_runs).used == 20
