"""Operator console under real concurrency on PostgreSQL: two operators pressing Refund on one
run at once move credits once; two approvals of one adjustment move credits once; concurrent
audit entries of one organization keep one unbroken hash chain."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models import AuditLogEntry, CreditLedgerEntry, Generation
from services import credits
from services import operator as operator_service
from services.audit import audit_record, audit_verify
from services.error_codes import Code
from services.errors import DomainError
from tests.conftest import requires_postgres
from tests.factories import make_org, make_user

pytestmark = [requires_postgres, pytest.mark.postgres]


def run_together(engine: Engine, calls: list[Callable[[Session], Any]]) -> list[Any]:
    """Each call in its own thread and session, released together; commit on success."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(index: int, call: Callable[[Session], Any]) -> None:
        with Session(engine, expire_on_commit=False) as session:
            try:
                barrier.wait(timeout=30)
                results[index] = call(session)
                session.commit()
            except Exception as error:  # noqa: BLE001  (the outcome is what the test compares)
                session.rollback()
                results[index] = error

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def world(pg_engine):
    owner = make_user(pg_engine, "olivia@acme.test", "Olivia Owner")
    org = make_org(pg_engine, owner, "Acme Marketing", credits=10_000)
    ann = make_user(pg_engine, "ann@ops.test", "Ann Operator", operator=True)
    bob = make_user(pg_engine, "bob@ops.test", "Bob Operator", operator=True)
    cid = make_user(pg_engine, "cid@ops.test", "Cid Operator", operator=True)
    with Session(pg_engine) as session:
        session.add(
            Generation(
                public_id="gen_failed1",
                org_id=org.id,
                user_id=owner.id,
                model_key="local-text",
                modality="text",
                status="failed",
                estimate_millicredits=4_000,
            )
        )
        session.commit()
    return {"org": org, "ann": ann, "bob": bob, "cid": cid}


def _balance(engine, org_id):
    with Session(engine) as session:
        return credits.balance_get(session=session, org_id=org_id).balance


def test_two_operators_refunding_one_run_at_once_refund_once(pg_engine, world):
    org = world["org"]
    before = _balance(pg_engine, org.id)

    def refund(operator):
        return lambda session: operator_service.run_refund(
            session=session,
            actor=operator,
            org_id=org.id,
            public_id="gen_failed1",
            reason="provider outage",
        )

    results = run_together(pg_engine, [refund(world["ann"]), refund(world["bob"])] * 2)
    refunded = [r for r in results if isinstance(r, CreditLedgerEntry)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(refunded) == 1, results
    assert len(refused) == 3 and {r.code for r in refused} == {Code.already_refunded}
    with Session(pg_engine) as session:
        entries = session.exec(
            select(CreditLedgerEntry).where(CreditLedgerEntry.kind == "refund")
        ).all()
        assert len(entries) == 1 and entries[0].amount_millicredits == 4_000
        audits = session.exec(
            select(AuditLogEntry).where(AuditLogEntry.action == "credits.refunded")
        ).all()
        assert len(audits) == 1
    assert _balance(pg_engine, org.id) == before + 4_000


def test_two_approvals_of_one_adjustment_move_credits_once(pg_engine, world):
    org = world["org"]
    with Session(pg_engine, expire_on_commit=False) as session:
        outcome = operator_service.adjustment_submit(
            session=session,
            actor=world["ann"],
            org_id=org.id,
            amount_millicredits=250_000,
            reason="contract credit",
            request_key="req-1",
        )
        session.commit()
    assert not outcome.applied
    before = _balance(pg_engine, org.id)

    def approve(operator):
        return lambda session: operator_service.adjustment_approve(
            session=session, actor=operator, approval_id=outcome.approval.id
        )

    results = run_together(pg_engine, [approve(world["bob"]), approve(world["cid"])])
    moved = [r for r in results if isinstance(r, CreditLedgerEntry)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(moved) == 1 and len(refused) == 1, results
    assert refused[0].code == Code.approval_decided
    assert _balance(pg_engine, org.id) == before + 250_000


def test_concurrent_audit_entries_keep_one_chain(pg_engine, world):
    org = world["org"]

    def write(index):
        def call(session):
            for step in range(5):
                audit_record(
                    session=session,
                    action="test.concurrent",
                    actor_user_id=world["ann"].id,
                    org_id=org.id,
                    details={"writer": index, "step": step},
                )

        return call

    results = run_together(pg_engine, [write(i) for i in range(4)])
    assert all(r is None for r in results), results
    with Session(pg_engine) as session:
        check = audit_verify(session=session, org_id=org.id)
        assert check.ok, check.message
        seqs = session.exec(
            select(AuditLogEntry.chain_seq)
            .where(AuditLogEntry.org_id == org.id)
            .order_by(AuditLogEntry.chain_seq)
        ).all()
        assert seqs == list(range(1, len(seqs) + 1))


def test_one_bulk_requeue_pressed_in_two_tabs_at_once_acts_once(pg_engine, world, monkeypatch):
    from services import run_engine

    executor = run_engine.inline_executor()
    monkeypatch.setattr(executor, "paused", True)
    monkeypatch.setattr(executor, "submitted", [])
    org, owner_id = world["org"], None
    with Session(pg_engine) as session:
        for index in range(3):
            session.add(
                Generation(
                    public_id=f"gen_queued{index}",
                    org_id=org.id,
                    user_id=owner_id,
                    model_key="local-text",
                    modality="text",
                    status="queued",
                    estimate_millicredits=1_000,
                )
            )
        session.commit()
    with Session(pg_engine) as session:
        operator_service.run_recover(
            session=session,
            actor=world["ann"],
            public_id="gen_queued0",
            action="requeue",
            reason="stuck",
        )
        session.commit()
    executor.submitted.clear()

    def bulk(operator):
        return lambda session: operator_service.runs_bulk_recover(
            session=session,
            actor=operator,
            org_id=org.id,
            action="requeue",
            reason="workers restarted",
            request_key="one-form",
        )

    results = run_together(pg_engine, [bulk(world["ann"]), bulk(world["ann"])])
    outcomes = [r for r in results if isinstance(r, operator_service.BulkOutcome)]
    assert len(outcomes) == 2, results
    assert sorted(o.replayed for o in outcomes) == [False, True]
    assert outcomes[0].acted == outcomes[1].acted and len(outcomes[0].acted) == 3
    assert len(executor.submitted) == 3
    with Session(pg_engine) as session:
        entries = session.exec(
            select(AuditLogEntry).where(AuditLogEntry.action == "generation.bulk_requeued")
        ).all()
        assert len(entries) == 1
        assert audit_verify(session=session, org_id=org.id).ok
