"""Stuck-generation sweep: a run with no result within 15 minutes is failed and refunded, once.

A generation counts as stuck when it is ``running`` and started more than 15 minutes ago
(``created_at`` when ``started_at`` is missing), or still ``queued`` 15 minutes after it was
created. The sweep marks it ``failed`` with ``failure_code="timed_out"``, appends the
transition to ``status_history``, releases its credit hold with the key
``generation:{id}:release`` (`services.generation_keys.release_key`, the key the studio's
completion path uses too) and writes an audit entry, all in one transaction.

Exactly once, with any number of sweepers and the studio's own completion path:

* Candidates are read in batches, then claimed in short transactions (a few generations each)
  with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two sweepers never hold the
  same generation; a row the studio is completing (locked) is skipped and re-examined by the
  next run. PostgreSQL re-checks the stuck condition on the locked row version, so a
  generation finished meanwhile is not claimed. On SQLite every write transaction starts with
  ``BEGIN IMMEDIATE`` (see ``core.db``), which serializes the sweepers.
* The hold can be closed only once (``services.credits``): if someone else already settled or
  released it, ``HoldAlreadyClosed`` is caught and nothing moves twice.
* A transaction locks its generations, then their orgs' credit accounts in org order (the
  same generation-then-account order as the studio's completion path) and commits within
  milliseconds, so sweepers cannot deadlock each other and a run starting in that org waits
  at most for one small transaction. A transaction that fails is retried one generation at a
  time, so one bad row never blocks the others.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from core import db
from core.clock import utcnow
from models import Generation
from models.enums import GenerationStatus
from services.audit import audit_record
from services.credits import HoldAlreadyClosed, credits_release
from services.error_codes import Code
from services.errors import NotFound
from services.generation_keys import release_key  # the studio path releases with the same key

log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(minutes=15)
TIMED_OUT_CODE = Code.timed_out.value
TIMED_OUT_REASON = "No result within 15 minutes; the held credits were refunded."
# Used when nothing was refunded (no hold was taken, or it had already been settled).
TIMED_OUT_REASON_NO_REFUND = "No result within 15 minutes."
DEFAULT_BATCH_SIZE = 500
# One generation per transaction: the org's credit-account lock is held for milliseconds and
# several sweepers scale (measured: chunks of 20-50 barely help one sweeper and make two
# sweepers queue on each other's account locks).
DEFAULT_ROWS_PER_TRANSACTION = 1
_SWEEPABLE = (GenerationStatus.running.value, GenerationStatus.queued.value)


@dataclass
class SweepResult:
    """What one sweep did. `items` is the number of generations it failed."""

    timed_out: int = 0
    refunded: int = 0
    refunded_millicredits: int = 0
    already_closed: int = 0
    errors: int = 0
    error_details: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        return self.timed_out


def stuck_condition(cutoff: datetime):
    """SQL condition for "no result by `cutoff`" (uses the (status, started_at) index)."""
    running = GenerationStatus.running.value
    return or_(
        and_(Generation.status == running, col(Generation.started_at) < cutoff),
        and_(
            Generation.status == running,
            col(Generation.started_at).is_(None),
            Generation.created_at < cutoff,
        ),
        and_(Generation.status == GenerationStatus.queued.value, Generation.created_at < cutoff),
    )


def _candidates(engine: Engine, cutoff: datetime, batch_size: int, after_id: int) -> list[int]:
    """Ids of up to `batch_size` stuck generations after `after_id`, in id order.

    A plain read: each row is claimed (and re-checked) in its own transaction afterwards.
    """
    with Session(engine) as session:
        ids = session.exec(
            select(Generation.id)
            .where(stuck_condition(cutoff), col(Generation.id) > after_id)
            .order_by(col(Generation.id))
            .limit(batch_size)
        ).all()
        session.rollback()
    return list(ids)


def _claim(session: Session, generation_ids: list[int], cutoff: datetime) -> list[Generation]:
    """Lock those of `generation_ids` that are still stuck and that nobody else holds.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` leaves out rows another sweeper or the studio's
    completion holds, and re-checks the stuck condition on the newest row version, so a
    generation finished meanwhile is not claimed. SQLite: the clause renders as nothing; the
    transaction's ``BEGIN IMMEDIATE`` serializes writers, so the read is already current.
    Ordered by org so credit-account row locks are always taken in the same order.
    """
    return list(
        session.exec(
            select(Generation)
            .where(col(Generation.id).in_(generation_ids), stuck_condition(cutoff))
            .order_by(col(Generation.org_id), col(Generation.id))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    )


def _time_out(session: Session, generation: Generation, now: datetime) -> tuple[int, str]:
    """Fail one claimed generation and release its hold (inside the caller's transaction).

    Returns (millicredits released now, who had closed the hold already: "", "release",
    "settle" or "no_hold").
    """
    released = 0
    closed_by = ""
    try:
        entry = credits_release(
            session=session,
            idempotency_key=release_key(generation.id),
            generation_id=generation.id,
            reason="Timed out: no result within 15 minutes.",
        )
        released = entry.amount_millicredits
    except HoldAlreadyClosed as closed:
        # Someone else closed the hold (a release here means the refund already happened).
        closed_by = closed.closing_entry.kind
    except NotFound:
        closed_by = "no_hold"  # failed before credits were held: nothing to give back
    refunded = released > 0 or closed_by == "release"
    generation.status = GenerationStatus.failed.value
    generation.failure_code = TIMED_OUT_CODE
    generation.failure_reason = TIMED_OUT_REASON if refunded else TIMED_OUT_REASON_NO_REFUND
    generation.finished_at = now
    # Reassign (not append) so the JSON column is seen as changed.
    generation.status_history = [
        *(generation.status_history or []),
        {"status": GenerationStatus.failed.value, "at": now.isoformat()},
    ]
    session.add(generation)
    audit_record(
        session=session,
        action="generation.timed_out",
        actor_user_id=None,
        org_id=generation.org_id,
        target_type="generation",
        target_id=generation.public_id,
        details={
            "released_millicredits": released,
            "hold_already_closed_by": closed_by or None,
            "stuck_since": (generation.started_at or generation.created_at).isoformat(),
        },
    )
    return released, closed_by


def _sweep_chunk(
    connection: Connection, generation_ids: list[int], cutoff: datetime, now: datetime
) -> list[tuple[int, str]] | Exception:
    """Claim and time out `generation_ids` in one short transaction.

    Returns one (released, closed_by) per generation timed out, or the exception after
    rolling everything back.
    """
    with Session(bind=connection, expire_on_commit=False) as session:
        try:
            outcomes = [
                _time_out(session, generation, now)
                for generation in _claim(session, generation_ids, cutoff)
                if generation.status in _SWEEPABLE
            ]
            session.commit()
            return outcomes
        except Exception as exc:
            session.rollback()
            return exc


def _tally(result: SweepResult, outcomes: list[tuple[int, str]]) -> None:
    for released, closed_by in outcomes:
        result.timed_out += 1
        if released > 0:
            result.refunded += 1
            result.refunded_millicredits += released
        if closed_by in ("release", "settle"):
            result.already_closed += 1


def _sweep_ids(
    connection: Connection, ids: list[int], cutoff: datetime, now: datetime, result: SweepResult
) -> None:
    """One transaction for `ids`; when it fails, each id alone, so one bad row blocks no other."""
    outcome = _sweep_chunk(connection, ids, cutoff, now)
    if not isinstance(outcome, Exception):
        _tally(result, outcome)
        return
    if len(ids) == 1:
        result.errors += 1
        result.error_details.append(
            f"generation {ids[0]}: {outcome.__class__.__name__}: {outcome}"[:300]
        )
        log.error("could not time out generation %s: %r", ids[0], outcome)
        return
    for generation_id in ids:
        _sweep_ids(connection, [generation_id], cutoff, now, result)


def generations_sweep_stuck(
    *,
    engine: Engine | None = None,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    rows_per_transaction: int = DEFAULT_ROWS_PER_TRANSACTION,
    shuffle: bool = True,
) -> SweepResult:
    """Fail and refund every generation with no result within 15 minutes, exactly once.

    Candidates are read in batches of `batch_size`; they are then claimed and timed out in
    short transactions of `rows_per_transaction` generations (a failing transaction is
    retried one generation at a time, so one bad row blocks no other). One call makes one pass over the stuck ids (rows held by another
    sweeper are skipped; a row that fails is retried by the next run), or stops after
    `max_batches` candidate reads.

    Args:
        engine: Database engine (default: the process engine).
        now: Current time (default: `core.clock.utcnow()`).
        batch_size: Candidate ids read per query.
        max_batches: Upper bound on candidate reads in this call (None: until none are left).
        rows_per_transaction: Generations claimed and committed together.
        shuffle: Process each batch in random order (spreads concurrent sweepers).

    Returns:
        Counts of what was timed out, refunded and skipped, and per-row errors.
    """
    engine = engine or db.get_engine()
    now = now or utcnow()
    cutoff = now - STUCK_AFTER
    result = SweepResult()
    after_id = 0  # one pass over the stuck ids; a row that fails is retried by the next run
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        candidates = _candidates(engine, cutoff, batch_size, after_id)
        if not candidates:
            break
        after_id = candidates[-1]
        chunks = [
            candidates[start : start + rows_per_transaction]
            for start in range(0, len(candidates), rows_per_transaction)
        ]
        if shuffle:  # several sweepers at once: start in different places, collide less
            random.shuffle(chunks)
        with engine.connect() as connection:  # one connection per batch, short transactions
            for chunk in chunks:
                _sweep_ids(connection, chunk, cutoff, now, result)
        if len(candidates) < batch_size:
            break
    if result.timed_out:
        log.info(
            "refund sweep: %d timed out, %d refunded, %d already closed, %d errors",
            result.timed_out,
            result.refunded,
            result.already_closed,
            result.errors,
        )
    return result
