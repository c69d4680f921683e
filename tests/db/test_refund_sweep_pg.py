"""Refund sweep under real concurrency on PostgreSQL: SKIP LOCKED claims, one refund per run."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import utcnow
from models import AuditLogEntry, CreditLedgerEntry, Generation
from models.enums import LedgerEntryKind
from services.credits import (
    HoldAlreadyClosed,
    balance_get,
    credits_hold,
    credits_settle,
    ledger_sum,
)
from services.generation_sweep import generations_sweep_stuck
from tests.conftest import requires_postgres
from tests.factories import make_org

pytestmark = [requires_postgres, pytest.mark.postgres]

C = 1000
_ids = itertools.count(1)


def make_generations(
    engine: Engine, org_id: int, count: int, *, minutes_ago: float, hold: int
) -> list[int]:
    moment = utcnow() - timedelta(minutes=minutes_ago)
    ids = []
    with Session(engine) as session:
        for _ in range(count):
            generation = Generation(
                public_id=f"gen_pg{next(_ids)}",
                org_id=org_id,
                model_key="local-text",
                modality="text",
                status="running",
                status_history=[
                    {"status": "queued", "at": moment.isoformat()},
                    {"status": "running", "at": moment.isoformat()},
                ],
                held_millicredits=hold,
                created_at=moment,
                started_at=moment,
            )
            session.add(generation)
            session.flush()
            credits_hold(
                session=session,
                org_id=org_id,
                amount_millicredits=hold,
                idempotency_key=f"generation:{generation.id}:hold",
                generation_id=generation.id,
            )
            ids.append(generation.id)
        session.commit()
    return ids


def run_together(functions) -> list:
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)

    def worker(index, function):
        barrier.wait(timeout=30)
        try:
            results[index] = function()
        except BaseException as exc:  # surfaced by the assertions below
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def closing_entries(session: Session) -> list[CreditLedgerEntry]:
    return list(
        session.exec(
            select(CreditLedgerEntry).where(
                CreditLedgerEntry.kind.in_(
                    [LedgerEntryKind.release.value, LedgerEntryKind.settle.value]
                )
            )
        )
    )


def test_two_concurrent_sweeps_refund_each_generation_once(pg_engine):
    orgs = [make_org(pg_engine, slug=f"sweep-{i}", credits=10_000 * C).id for i in range(3)]
    stuck = [
        g
        for org_id in orgs
        for g in make_generations(pg_engine, org_id, 40, minutes_ago=20, hold=3 * C)
    ]
    recent = make_generations(pg_engine, orgs[0], 5, minutes_ago=5, hold=C)

    results = run_together(
        [lambda: generations_sweep_stuck(engine=pg_engine, batch_size=7) for _ in range(2)]
        + [lambda: generations_sweep_stuck(engine=pg_engine, batch_size=11)]
    )

    for result in results:
        assert not isinstance(result, BaseException), result
        assert result.errors == 0, result.error_details
    assert sum(r.timed_out for r in results) == len(stuck)
    assert sum(r.refunded for r in results) == len(stuck)
    with Session(pg_engine) as session:
        releases = [e for e in closing_entries(session) if e.kind == "release"]
        per_generation = Counter(e.generation_id for e in releases)
        assert set(per_generation) == set(stuck)
        assert set(per_generation.values()) == {1}
        assert {e.idempotency_key for e in releases} == {f"generation:{g}:release" for g in stuck}
        statuses = dict(session.exec(select(Generation.id, Generation.status)).all())
        assert {statuses[g] for g in stuck} == {"failed"}
        assert {statuses[g] for g in recent} == {"running"}
        audits = session.exec(
            select(AuditLogEntry).where(AuditLogEntry.action == "generation.timed_out")
        ).all()
        assert len(audits) == len(stuck)
        for org_id in orgs:
            balance = balance_get(session=session, org_id=org_id).balance
            assert balance == ledger_sum(session=session, org_id=org_id)
        assert balance_get(session=session, org_id=orgs[1]).balance == 10_000 * C
        assert balance_get(session=session, org_id=orgs[0]).balance == 10_000 * C - 5 * C


def _complete_like_the_studio(engine: Engine, generation_id: int) -> str:
    """The studio's completion rule: settle only if still running, under the row lock."""
    with Session(engine, expire_on_commit=False) as session:
        generation = session.exec(
            select(Generation).where(Generation.id == generation_id).with_for_update()
        ).one()
        if generation.status != "running":
            generation.late_result = {"text": "late"}
            session.add(generation)
            session.commit()
            return "late"
        try:
            credits_settle(
                session=session,
                actual_millicredits=C,
                idempotency_key=f"generation:{generation_id}:settle",
                generation_id=generation_id,
            )
        except HoldAlreadyClosed:
            session.rollback()
            return "closed"
        generation.status = "succeeded"
        generation.finished_at = datetime.now(UTC)
        session.add(generation)
        session.commit()
        return "settled"


def test_sweep_racing_completions_closes_each_hold_once(pg_engine):
    org_id = make_org(pg_engine, slug="race", credits=10_000 * C).id
    stuck = make_generations(pg_engine, org_id, 30, minutes_ago=16, hold=2 * C)

    def completions():
        return [_complete_like_the_studio(pg_engine, g) for g in stuck]

    results = run_together(
        [completions, lambda: generations_sweep_stuck(engine=pg_engine, batch_size=5)]
    )
    assert not any(isinstance(r, BaseException) for r in results), results
    outcomes, sweep = results
    assert "closed" not in outcomes
    with Session(pg_engine) as session:
        closing = Counter(e.generation_id for e in closing_entries(session))
        assert set(closing) == set(stuck) and set(closing.values()) == {1}
        kinds = {e.generation_id: e.kind for e in closing_entries(session)}
        rows = {g.id: g for g in session.exec(select(Generation))}
        for generation_id, outcome in zip(stuck, outcomes, strict=True):
            row = rows[generation_id]
            if outcome == "settled":
                assert row.status == "succeeded" and kinds[generation_id] == "settle"
            else:
                assert row.status == "failed" and kinds[generation_id] == "release"
                assert row.late_result == {"text": "late"}
        assert sweep.timed_out == sum(1 for o in outcomes if o == "late")
        assert balance_get(session=session, org_id=org_id).balance == ledger_sum(
            session=session, org_id=org_id
        )
