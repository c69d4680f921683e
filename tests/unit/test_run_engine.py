"""The run executor: a committed run is handed over once, claimed once, streamed, recovered.

SQLite and the inline executor here; real Redis with real worker processes on PostgreSQL in
`tests/db/test_run_engine_pg.py`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from core import db
from core.clock import utcnow
from core.settings import reset_settings_cache
from models import AuditLogEntry, CreditLedgerEntry, Generation, UsageEvent
from services import generations, run_engine
from services.errors import Conflict, DomainError
from services.providers.local import LocalProvider
from tests.factories import make_user
from tests.unit.test_generations import World, _local_assets  # noqa: F401  (autouse fixture)


@pytest.fixture
def world(session):
    return World(session)


@pytest.fixture
def sent(monkeypatch):
    """What the inline executor was handed, without running it (the tests run tasks)."""
    executor = run_engine.inline_executor()
    monkeypatch.setattr(executor, "paused", True)
    monkeypatch.setattr(executor, "submitted", [])
    return executor.submitted


def _fresh(generation_id: int) -> Generation:
    with db.new_session() as session:
        return session.get(Generation, generation_id)


# Every read of the test's own session ends its transaction with a commit (which keeps its
# objects loaded): SQLite transactions here start with BEGIN IMMEDIATE, and the executor's
# sessions must be able to write meanwhile.


def _ledger(session, generation_id: int) -> list[str]:
    kinds = [
        entry.kind
        for entry in session.exec(
            select(CreditLedgerEntry)
            .where(CreditLedgerEntry.generation_id == generation_id)
            .order_by(CreditLedgerEntry.id)
        )
    ]
    session.commit()
    return kinds


def _ledger_sum(session, org_id: int) -> int:
    total = sum(
        entry.amount_millicredits
        for entry in session.exec(
            select(CreditLedgerEntry).where(CreditLedgerEntry.org_id == org_id)
        )
    )
    session.commit()
    return total


def _balance(world: World) -> int:
    available = world.balance()
    world.session.commit()
    return available


def test_a_run_is_handed_to_the_executor_only_when_its_start_commits(world, session, sent):
    kept = world.start(prompt="Kept")
    assert sent == [kept.id]

    generations.generation_start(
        session=session,
        user=world.editor,
        org_id=world.org.id,
        model_key="local-text",
        prompt="Rolled back",
        project_id=world.spring.id,
    )
    session.rollback()
    session.commit()  # a later commit of the same session sends nothing for it
    assert sent == [kept.id]
    assert [g.prompt for g in session.exec(select(Generation))] == ["Kept"]


def test_a_task_delivered_twice_runs_once(world, session, sent):
    generation = world.start()

    assert run_engine.run_task(generation.id) == "succeeded"
    assert run_engine.run_task(generation.id) == "skipped"

    done = _fresh(generation.id)
    assert done.status == "succeeded" and done.output_text
    assert done.lease_expires_at is None and done.worker_id == run_engine.worker_id()
    assert _ledger(session, generation.id) == ["hold", "settle"]
    assert len(session.exec(select(UsageEvent)).all()) == 1
    assert _balance(world) == _ledger_sum(session, world.org.id)


def test_text_is_written_into_the_run_while_it_is_generated(world, session, sent, monkeypatch):
    seen: list[str | None] = []

    class Slow(LocalProvider):
        def generate_text(self, *, on_delta=None, **kwargs):
            for piece in ("Spring ", "is ", "here."):
                on_delta(piece)
                seen.append(_fresh(generation.id).output_text)
                time.sleep(run_engine.STREAM_FLUSH_SECONDS + 0.05)
            return super().generate_text(**kwargs)

    monkeypatch.setattr(generations, "provider_for", lambda model: Slow())
    generation = world.start()

    run_engine.run_task(generation.id)

    assert seen == ["Spring ", "Spring is ", "Spring is here."]
    final = _fresh(generation.id)
    assert final.status == "succeeded" and final.output_text != "Spring is here."


def test_the_inline_executor_runs_a_committed_run_in_the_background(world, session, monkeypatch):
    monkeypatch.setattr(run_engine.inline_executor(), "paused", False)
    generation = world.start()

    give_up = time.monotonic() + 30
    while _fresh(generation.id).status in ("queued", "running"):
        assert time.monotonic() < give_up, "the inline executor never finished the run"
        time.sleep(0.05)
    assert _fresh(generation.id).status == "succeeded"
    assert _ledger(session, generation.id) == ["hold", "settle"]


def _claimed_by_a_dead_worker(generation_id: int, *, lease_left: float) -> None:
    with db.new_session() as session:
        assert generations.generation_mark_running(
            session=session, generation_id=generation_id, worker_id="gone:1", lease_seconds=60
        )
    with db.session_scope() as session:
        row = session.get(Generation, generation_id)
        row.lease_expires_at = utcnow() + timedelta(seconds=lease_left)
        session.add(row)


def test_a_run_whose_worker_died_is_failed_and_refunded_once(world, session, sent):
    lost = world.start(prompt="Lost")
    alive = world.start(prompt="Alive", user=world.owner)
    _claimed_by_a_dead_worker(lost.id, lease_left=-1)
    _claimed_by_a_dead_worker(alive.id, lease_left=+60)
    before = _balance(world)

    first = run_engine.runs_recover()
    second = run_engine.runs_recover()

    assert (first.lost, second.lost) == (1, 0)
    row = _fresh(lost.id)
    assert row.status == "failed" and row.failure_code == "worker_lost"
    assert row.failure_reason == run_engine.WORKER_LOST_REASON
    assert _ledger(session, lost.id) == ["hold", "release"]
    assert _balance(world) == before + lost.held_millicredits
    assert _fresh(alive.id).status == "running"  # its worker still renews the lease
    usage = session.exec(select(UsageEvent).where(UsageEvent.generation_id == lost.id)).one()
    assert (usage.outcome, usage.millicredits) == ("failed", 0)
    session.commit()
    assert _balance(world) == _ledger_sum(session, world.org.id)
    # A redelivered message of the dead worker finds the run finished and does nothing.
    assert run_engine.run_task(lost.id) == "skipped"


def test_a_queued_run_never_handed_over_is_sent_again_once(world, session, sent):
    generation = world.start()
    sent.clear()  # as if the web process died between the commit and the send
    with db.session_scope() as writer:
        row = writer.get(Generation, generation.id)
        row.created_at = utcnow() - timedelta(minutes=5)
        writer.add(row)

    assert run_engine.runs_recover().requeued == 1
    assert run_engine.runs_recover().requeued == 0  # sent a moment ago: not again yet
    assert sent == [generation.id]
    assert run_engine.run_task(generation.id) == "succeeded"


def _operator(session):
    operator = make_user(session, "ops@example.com", "Ops", operator=True)
    session.commit()
    return operator


def test_an_operator_stops_a_running_run_now_once_and_it_is_audited(world, session, sent):
    generation = world.start()
    _claimed_by_a_dead_worker(generation.id, lease_left=+60)
    operator = _operator(session)
    before = _balance(world)

    for _ in range(2):
        run_engine.run_force_fail(
            session=session, actor=operator, public_id=generation.public_id, reason="stuck"
        )
        session.commit()

    row = _fresh(generation.id)
    assert (row.status, row.failure_code) == ("failed", "stopped_by_operator")
    assert _ledger(session, generation.id) == ["hold", "release"]
    assert _balance(world) == before + generation.held_millicredits
    audits = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "generation.force_failed")
    ).all()
    assert len(audits) == 1 and audits[0].actor_user_id == operator.id
    session.commit()
    # The worker still holding it completes later: nothing is charged.
    with db.new_session() as worker_session:
        late = generations.generation_execute(session=worker_session, generation_id=generation.id)
    assert late.status == "failed" and _ledger(session, generation.id) == ["hold", "release"]


def test_an_operator_requeues_a_queued_run_but_not_a_finished_one(world, session, sent):
    generation = world.start()
    generation_id, public_id = generation.id, generation.public_id
    operator = _operator(session)

    run_engine.run_requeue(session=session, actor=operator, public_id=public_id)
    assert sent == [generation_id]  # not before the commit
    session.commit()
    assert sent == [generation_id, generation_id]
    assert run_engine.run_task(generation_id) == "succeeded"

    with pytest.raises(Conflict) as refused:
        run_engine.run_requeue(session=session, actor=operator, public_id=public_id)
    assert refused.value.code == "run_not_queued"
    assert "is succeeded, not queued" in refused.value.message
    session.rollback()
    audits = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "generation.requeued")
    ).all()
    assert len(audits) == 1


def test_members_cannot_use_the_operator_recovery(world, session, sent):
    generation = world.start()
    generation_id, public_id = generation.id, generation.public_id
    before = _balance(world)

    with pytest.raises(DomainError):
        run_engine.run_force_fail(session=session, actor=world.owner, public_id=public_id)
    session.rollback()
    assert _fresh(generation_id).status == "queued"
    assert _balance(world) == before


def test_a_run_wakes_the_studio_pages_of_its_organization_through_redis(
    world, session, sent, monkeypatch
):
    redis = pytest.importorskip("redis")
    url = os.environ.get("RUN_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {url}")
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("RUN_REDIS_NAMESPACE", f"runs-test-{uuid.uuid4().hex[:12]}")
    monkeypatch.setattr(run_engine, "_publisher", None)
    reset_settings_cache()
    generation = world.start()
    channel = run_engine.run_events_channel(world.org.id)

    async def scenario() -> tuple[bool, bool]:
        waiting = asyncio.create_task(run_engine.run_events_wait(org_id=world.org.id, timeout=60))
        while not dict(client.pubsub_numsub(channel)).get(channel.encode()):
            await asyncio.sleep(0.01)  # subscribed: nothing published can be missed
        worker = threading.Thread(target=run_engine.run_task, args=(generation.id,))
        worker.start()
        woke = await waiting
        worker.join()
        elsewhere = await run_engine.run_events_wait(org_id=world.org.id + 1000, timeout=0.2)
        return woke, elsewhere

    assert asyncio.run(scenario()) == (True, False)
    assert _fresh(generation.id).status == "succeeded"


def test_without_redis_the_page_waits_and_reads_again(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    reset_settings_cache()

    assert asyncio.run(run_engine.run_events_wait(org_id=1, timeout=0.05)) is False
