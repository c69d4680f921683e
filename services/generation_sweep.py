"""Stuck-generation sweep: a run with no result within 15 minutes is failed and refunded, once.

A generation counts as stuck when it is ``running`` and started more than 15 minutes ago
(``created_at`` when ``started_at`` is missing), or still ``queued`` 15 minutes after it was
created. The sweep marks it ``failed`` with ``failure_code="timed_out"``, appends the
transition to ``status_history``, releases its credit hold with the key
``generation:{id}:release`` (`services.generation_keys.release_key`, the key the studio's
completion path uses too) and writes an audit entry, in the same transaction.

PostgreSQL works set-based, one transaction per batch (`DEFAULT_BATCH_SIZE` generations):

1. claim a batch of stuck generations with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL
   re-checks the stuck condition on the locked row version, so a generation finished
   meanwhile is not claimed; a row another sweeper or the studio's completion holds is left
   to them);
2. lock the credit accounts of the batch's organizations, in org order;
3. one statement: read the holds and whatever already closed them, close the open ones with
   one insert-select of ``release`` entries (``ON CONFLICT (idempotency_key) DO NOTHING``),
   move each organization's balance (and each pool) once by what was inserted, mark the
   generations failed and write their audit entries.

SQLite (one writer at a time) takes the simple path: generations one at a time through
``services.credits.credits_release``, with the same outcome.

Exactly once, with any number of sweepers and the studio's own completion path:

* Two sweepers never hold the same generation (``SKIP LOCKED``; on SQLite every write
  transaction starts with ``BEGIN IMMEDIATE``, see ``core.db``, which serializes them). The
  studio's completion locks the generation before it settles or releases, so it waits for the
  sweep and then finds the run failed.
* A hold is closed once: the release carries the unique key ``release_key(id)``, and it is
  written only when no entry closed the hold yet, read after the account locks (every
  movement of an organization's credits takes its account lock, so nothing can close the hold
  between that read and the commit).
* Locks are taken generations first, then accounts in org order (the studio's completion also
  locks the generation before the account), so sweepers cannot deadlock each other or the
  studio. A batch that fails is rolled back and its generations are retried one at a time, so
  one bad row never blocks the others; a generation that still fails is left for the next run.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from core import db
from core.clock import utcnow
from models import Generation, UsageEvent
from models.enums import GenerationStatus, LedgerEntryKind
from services.audit import audit_record
from services.credits import HoldAlreadyClosed, credits_release
from services.error_codes import Code
from services.errors import NotFound
from services.generation_keys import release_key  # the studio path releases with the same key
from services.generations import usage_event_for
from services.notifications import run_failed_notify

log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(minutes=15)
TIMED_OUT_CODE = Code.timed_out.value
TIMED_OUT_REASON = "No result within 15 minutes; the held credits were refunded."
# Used when nothing was refunded (no hold was taken, or it had already been settled).
TIMED_OUT_REASON_NO_REFUND = "No result within 15 minutes."
TIMED_OUT_MEMO = "Timed out: no result within 15 minutes."
# Generations claimed and timed out per transaction on PostgreSQL (measured: 1,000 keeps each
# transaction well under a second and two sweepers splitting the work evenly).
DEFAULT_BATCH_SIZE = 1000
# The simple path (SQLite, and a PostgreSQL batch that failed): one generation per
# transaction, so one bad row blocks no other.
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
    failed_generation_ids: list[int] = field(default_factory=list)
    # Generations this sweep timed out (committed): their people get the run-failed mail.
    timed_out_generation_ids: list[int] = field(default_factory=list)
    # Competitor Intel reports timed out by the same sweep (services/intel/runner.py).
    reports_timed_out: int = 0

    @property
    def items(self) -> int:
        return self.timed_out + self.reports_timed_out


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
            reason=TIMED_OUT_MEMO,
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
    # Usage is complete: a timed-out run is a usage event too (no credits), once per run.
    recorded = session.exec(
        select(UsageEvent.id).where(UsageEvent.generation_id == generation.id)
    ).first()
    if recorded is None:
        session.add(
            usage_event_for(
                generation,
                outcome=TIMED_OUT_CODE,
                units=0,
                millicredits=0,
                provider_units=None,
                at=now,
            )
        )
    return released, closed_by


def _sweep_chunk(
    connection: Connection,
    generation_ids: list[int],
    cutoff: datetime,
    now: datetime,
    timed_out_ids: list[int] | None = None,
) -> list[tuple[int, str]] | Exception:
    """Claim and time out `generation_ids` in one short transaction.

    Returns one (released, closed_by) per generation timed out, or the exception after
    rolling everything back. The ids timed out are appended to `timed_out_ids` once committed.
    """
    with Session(bind=connection, expire_on_commit=False) as session:
        try:
            claimed = [
                generation
                for generation in _claim(session, generation_ids, cutoff)
                if generation.status in _SWEEPABLE
            ]
            outcomes = [_time_out(session, generation, now) for generation in claimed]
            session.commit()
            if timed_out_ids is not None:
                timed_out_ids.extend(generation.id for generation in claimed)
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
    outcome = _sweep_chunk(connection, ids, cutoff, now, result.timed_out_generation_ids)
    if not isinstance(outcome, Exception):
        _tally(result, outcome)
        return
    if len(ids) == 1:
        result.errors += 1
        result.failed_generation_ids.append(ids[0])
        result.error_details.append(
            f"generation {ids[0]}: {outcome.__class__.__name__}: {outcome}"[:300]
        )
        log.error("could not time out generation %s: %r", ids[0], outcome)
        return
    for generation_id in ids:
        _sweep_ids(connection, [generation_id], cutoff, now, result)


# --- PostgreSQL: set-based, one transaction per batch ---------------------------------------

_LOCK_ACCOUNTS = text(
    "SELECT org_id FROM credit_accounts WHERE org_id = ANY(:org_ids) ORDER BY org_id FOR UPDATE"
)
# Runs after the accounts of the batch's organizations are locked (a new snapshot): holds,
# closures and balances read here cannot change before the commit.
_TIME_OUT_BATCH = text(
    """
WITH claimed AS (
    SELECT id, org_id, public_id, coalesce(started_at, created_at) AS stuck_since
    FROM generations WHERE id = ANY(:ids)
), release_keys AS (
    SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:release_keys AS text[]))
        AS k(generation_id, release_key)
), hold AS (
    SELECT DISTINCT ON (e.generation_id) e.id, e.org_id, e.generation_id,
           e.amount_millicredits, e.pool_id, e.pool_amount_millicredits, e.project_id,
           e.actor_user_id, k.release_key
    FROM credit_ledger_entries e JOIN release_keys k ON k.generation_id = e.generation_id
    WHERE e.generation_id = ANY(:ids) AND e.kind = CAST(:hold_kind AS text)
    ORDER BY e.generation_id, e.id
), closing AS (
    SELECT DISTINCT ON (h.generation_id) h.generation_id, e.kind
    FROM hold h JOIN credit_ledger_entries e
      ON e.generation_id = h.generation_id AND e.org_id = h.org_id
     AND e.reference = 'hold:' || h.id
    WHERE e.kind IN (CAST(:settle_kind AS text), CAST(:release_kind AS text))
    ORDER BY h.generation_id, e.id
), key_taken AS (
    SELECT h.generation_id FROM hold h JOIN credit_ledger_entries e
      ON e.idempotency_key = h.release_key
    WHERE NOT EXISTS (SELECT FROM closing c WHERE c.generation_id = h.generation_id)
), releasing AS (
    SELECT h.*, p.id AS back_pool_id,
           CASE WHEN p.id IS NULL THEN 0 ELSE -h.pool_amount_millicredits END AS pool_back
    FROM hold h
    LEFT JOIN credit_pools p ON p.id = h.pool_id AND h.pool_amount_millicredits < 0
    WHERE NOT EXISTS (SELECT FROM closing c WHERE c.generation_id = h.generation_id)
      AND NOT EXISTS (SELECT FROM key_taken k WHERE k.generation_id = h.generation_id)
), released AS (
    INSERT INTO credit_ledger_entries (
        org_id, kind, amount_millicredits, balance_after_millicredits, pool_id,
        pool_amount_millicredits, idempotency_key, actor_user_id, project_id, generation_id,
        reference, memo, created_at)
    SELECT r.org_id, CAST(:release_kind AS text), -r.amount_millicredits,
           a.balance_millicredits + sum(-r.amount_millicredits)
               OVER (PARTITION BY r.org_id ORDER BY r.generation_id),
           r.back_pool_id, r.pool_back, r.release_key,
           r.actor_user_id, r.project_id, r.generation_id, 'hold:' || r.id,
           CAST(:memo AS text), CAST(:recorded_at AS timestamptz)
    FROM releasing r JOIN credit_accounts a ON a.org_id = r.org_id
    ORDER BY r.org_id, r.generation_id
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING org_id, generation_id, amount_millicredits, pool_id, pool_amount_millicredits
), account_update AS (
    UPDATE credit_accounts a
    SET balance_millicredits = a.balance_millicredits + r.total,
        updated_at = CAST(:recorded_at AS timestamptz)
    FROM (SELECT org_id, sum(amount_millicredits) AS total FROM released GROUP BY org_id) r
    WHERE a.org_id = r.org_id
), pool_update AS (
    UPDATE credit_pools p
    SET balance_millicredits = p.balance_millicredits + r.total,
        updated_at = CAST(:recorded_at AS timestamptz)
    FROM (
        SELECT pool_id, sum(pool_amount_millicredits) AS total FROM released
        WHERE pool_id IS NOT NULL GROUP BY pool_id
    ) r
    WHERE p.id = r.pool_id
), outcome AS (
    SELECT c.id, c.org_id, c.public_id, c.stuck_since,
           coalesce(r.amount_millicredits, 0) AS released,
           CASE WHEN r.generation_id IS NOT NULL THEN NULL
                WHEN cl.kind IS NOT NULL THEN cl.kind
                WHEN h.id IS NULL THEN 'no_hold' END AS closed_by
    FROM claimed c
    LEFT JOIN released r ON r.generation_id = c.id
    LEFT JOIN closing cl ON cl.generation_id = c.id
    LEFT JOIN hold h ON h.generation_id = c.id
    WHERE NOT EXISTS (SELECT FROM key_taken k WHERE k.generation_id = c.id)
), failed AS (
    UPDATE generations g
    SET status = CAST(:failed AS text),
        failure_code = CAST(:code AS text),
        finished_at = CAST(:now AS timestamptz),
        failure_reason = CASE WHEN o.released > 0 OR o.closed_by = CAST(:release_kind AS text)
                              THEN CAST(:reason AS text)
                              ELSE CAST(:reason_no_refund AS text) END,
        status_history = (
            coalesce(g.status_history::jsonb, '[]'::jsonb)
            || jsonb_build_array(jsonb_build_object(
                'status', CAST(:failed AS text), 'at', CAST(:now_iso AS text)))
        )::json
    FROM outcome o WHERE g.id = o.id
), audit AS (
    INSERT INTO audit_log_entries (
        org_id, actor_user_id, action, target_type, target_id, details, created_at)
    SELECT o.org_id, NULL, 'generation.timed_out', 'generation', o.public_id,
           json_build_object(
               'released_millicredits', o.released,
               'hold_already_closed_by', o.closed_by,
               'stuck_since', (to_json(o.stuck_since AT TIME ZONE 'UTC') #>> '{}') || '+00:00'),
           CAST(:recorded_at AS timestamptz)
    FROM outcome o
), usage AS (
    INSERT INTO usage_events (
        org_id, project_id, user_id, generation_id, source, model_key, modality, units,
        millicredits, reconciled, provider_units, outcome, request_id, occurred_at)
    SELECT g.org_id, g.project_id, g.user_id, g.id,
           CASE WHEN g.api_key_id IS NULL THEN 'studio' ELSE 'api' END,
           g.model_key, g.modality, 0, 0, false, NULL, CAST(:code AS text), g.request_id,
           CAST(:now AS timestamptz)
    FROM outcome o JOIN generations g ON g.id = o.id
    ON CONFLICT (generation_id) DO NOTHING
)
SELECT id, released, closed_by FROM outcome
UNION ALL SELECT generation_id, NULL, 'key_taken' FROM key_taken
"""
)


def _claim_batch(
    connection: Connection, cutoff: datetime, batch_size: int, skip: set[int]
) -> list[tuple[int, int]]:
    """(id, org_id) of up to `batch_size` stuck generations nobody else holds, now locked."""
    query = (
        select(Generation.id, Generation.org_id)
        .where(stuck_condition(cutoff))
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    if skip:
        query = query.where(col(Generation.id).not_in(sorted(skip)))
    return [(row[0], row[1]) for row in connection.execute(query)]


def _time_out_batch(
    connection: Connection, claimed: list[tuple[int, int]], now: datetime
) -> list[tuple[int, int, str]]:
    """Close the holds of the claimed generations and fail them; (id, released, closed_by)."""
    org_ids = sorted({org_id for _, org_id in claimed})
    connection.execute(_LOCK_ACCOUNTS, {"org_ids": org_ids})
    # Entries are stamped after the locks, so each organization's ledger reads in lock order.
    recorded_at = utcnow()
    ids = [generation_id for generation_id, _ in claimed]
    rows = connection.execute(
        _TIME_OUT_BATCH,
        {
            "ids": ids,
            "release_keys": [release_key(generation_id) for generation_id in ids],
            "hold_kind": LedgerEntryKind.hold.value,
            "settle_kind": LedgerEntryKind.settle.value,
            "release_kind": LedgerEntryKind.release.value,
            "failed": GenerationStatus.failed.value,
            "code": TIMED_OUT_CODE,
            "reason": TIMED_OUT_REASON,
            "reason_no_refund": TIMED_OUT_REASON_NO_REFUND,
            "memo": TIMED_OUT_MEMO,
            "now": now,
            "now_iso": now.isoformat(),
            "recorded_at": recorded_at,
        },
    )
    return [(row[0], row[1] or 0, row[2] or "") for row in rows]


def _sweep_set_based(
    engine: Engine,
    cutoff: datetime,
    now: datetime,
    result: SweepResult,
    *,
    batch_size: int,
    max_batches: int | None,
) -> None:
    skip: set[int] = set()  # failed in this call: left for the next run
    batches = 0
    with engine.connect() as connection:
        while max_batches is None or batches < max_batches:
            batches += 1
            claimed: list[tuple[int, int]] = []
            try:
                with connection.begin():
                    claimed = _claim_batch(connection, cutoff, batch_size, skip)
                    outcomes = _time_out_batch(connection, claimed, now) if claimed else []
            except Exception as exc:  # rolled back: each generation alone, one bad row blocks none
                if not claimed:
                    raise
                log.warning(
                    "refund sweep batch of %d failed (%r); one at a time", len(claimed), exc
                )
                _sweep_ids(connection, [g for g, _ in claimed], cutoff, now, result)
                skip.update(result.failed_generation_ids)
                continue
            for generation_id, released, closed_by in outcomes:
                if closed_by == "key_taken":  # left running, as credits_release would refuse
                    result.errors += 1
                    result.failed_generation_ids.append(generation_id)
                    result.error_details.append(
                        f"generation {generation_id}: its release key "
                        f"{release_key(generation_id)!r} belongs to another credit movement"
                    )
                    skip.add(generation_id)
                    continue
                _tally(result, [(released, closed_by)])
                result.timed_out_generation_ids.append(generation_id)
            if len(claimed) < batch_size:
                break


# --- the sweep ------------------------------------------------------------------------------


def _sweep_row_by_row(
    engine: Engine,
    cutoff: datetime,
    now: datetime,
    result: SweepResult,
    *,
    batch_size: int,
    max_batches: int | None,
    rows_per_transaction: int,
    shuffle: bool,
) -> None:
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


# Timed-out runs mailed per transaction: one commit for many mails, not one each.
MAIL_BATCH = 200


def _notify_timed_out(engine: Engine, generation_ids: list[int]) -> None:
    """The run-failed mail for the runs this sweep timed out, after their commits.

    Each id is here only in the sweep that committed its time-out (SKIP LOCKED and the stuck
    condition make that one sweep), so each person is mailed once per run; a crash before this
    loses the mail rather than sending it twice. The runs are read and mailed `MAIL_BATCH` at
    a time, one transaction each; each mail has a savepoint of its own, so one that fails is
    logged and the others stand. Mail trouble never fails the sweep."""
    for start in range(0, len(generation_ids), MAIL_BATCH):
        batch = generation_ids[start : start + MAIL_BATCH]
        try:
            with Session(engine) as session:
                runs = session.exec(
                    select(Generation).where(col(Generation.id).in_(batch)).order_by(Generation.id)
                ).all()
                for generation in runs:
                    try:
                        with session.begin_nested():
                            run_failed_notify(session=session, generation=generation)
                    except Exception:  # noqa: BLE001 - the refund stands; the mail is secondary
                        log.exception("generation %s: timed-out mail not sent", generation.id)
                session.commit()
        except Exception:  # noqa: BLE001 - the refunds stand; the mail is secondary
            log.exception("timed-out mail not sent for generations %s..%s", batch[0], batch[-1])


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

    PostgreSQL: batches of `batch_size` generations are claimed (``SKIP LOCKED``) and timed out
    set-based, one transaction per batch, until a claim comes back short (what another sweeper
    holds is its work). SQLite: candidates are read `batch_size` at a time and timed out
    `rows_per_transaction` at a time, in one pass over the stuck ids. Either way a generation
    that fails is recorded in the result and retried by the next run.

    Args:
        engine: Database engine (default: the process engine).
        now: Current time (default: `core.clock.utcnow()`).
        batch_size: Generations per claim (PostgreSQL) or candidate read (SQLite).
        max_batches: Upper bound on claims or candidate reads in this call (None: no bound).
        rows_per_transaction: Generations committed together on the simple path.
        shuffle: On the simple path, process each batch in random order (spreads sweepers).

    Returns:
        Counts of what was timed out, refunded and skipped, and per-row errors.
    """
    engine = engine or db.get_engine()
    now = now or utcnow()
    cutoff = now - STUCK_AFTER
    result = SweepResult()
    if engine.dialect.name == "postgresql":
        _sweep_set_based(
            engine, cutoff, now, result, batch_size=batch_size, max_batches=max_batches
        )
    else:
        _sweep_row_by_row(
            engine,
            cutoff,
            now,
            result,
            batch_size=batch_size,
            max_batches=max_batches,
            rows_per_transaction=rows_per_transaction,
            shuffle=shuffle,
        )
    _notify_timed_out(engine, result.timed_out_generation_ids)
    from services.intel.runner import reports_sweep_stuck  # reports: same 15 minutes, once

    try:
        result.reports_timed_out = reports_sweep_stuck(now=now, engine=engine).timed_out
    except Exception:  # noqa: BLE001 - the generations' sweep stands; reports retry next run
        log.exception("refund sweep: Competitor Intel reports could not be swept")
    if result.timed_out or result.errors:
        log.info(
            "refund sweep: %d timed out, %d refunded, %d already closed, %d errors",
            result.timed_out,
            result.refunded,
            result.already_closed,
            result.errors,
        )
    return result
