"""Housekeeping on PostgreSQL: two processes at once grant each month once; roll-ups upsert."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from core.clock import utcnow
from models import CreditLedgerEntry, Invite, Organization
from services import housekeeping
from services.credits import balance_get, ledger_sum
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.postgres]


def together(function, count: int = 3) -> list:
    barrier = threading.Barrier(count)
    results = []

    def worker():
        barrier.wait(timeout=10)
        results.append(function())

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_housekeeping_is_exactly_once(pg_engine):
    now = utcnow()
    with Session(pg_engine) as session:
        orgs = [Organization(slug=f"free-{i}", name=f"Free {i}") for i in range(5)]
        session.add_all(orgs)
        session.flush()
        org_ids = [o.id for o in orgs]
        session.add_all(
            Invite(
                org_id=org_ids[0],
                email=f"p{i}@x.test",
                role="viewer",
                token_hash=f"t{i}",
                expires_at=now - timedelta(hours=i + 1),
            )
            for i in range(4)
        )
        session.commit()

    grants = together(housekeeping.monthly_credit_grants)
    expired = together(housekeeping.invites_expire_due)

    assert sum(g.items for g in grants) == 5 and not any(g.errors for g in grants)
    assert sum(expired) == 4
    with Session(pg_engine) as session:
        keys = session.exec(select(CreditLedgerEntry.idempotency_key)).all()
        assert len(keys) == 5 and len(set(keys)) == 5
        for org_id in org_ids:
            assert balance_get(session=session, org_id=org_id).balance == 50_000
            assert ledger_sum(session=session, org_id=org_id) == 50_000
