"""The run executor: every generation runs here, whoever started it (Studio, retry, API, operator).

Two modes, one task (`run_task`), chosen by ``RUN_QUEUE``:

* ``inline`` (default): a pool of worker threads inside the process that enqueues
  (``RUN_INLINE_THREADS``); no extra service, works on SQLite.
* ``redis``: Dramatiq on ``REDIS_URL``. Workers are processes of their own
  (``python -m jobs worker``), separate from the web workers and the scheduler. Messages are
  acknowledged after the task returns; a worker that dies stops its Redis heartbeat and its
  unacknowledged messages go back to the queue; a task has a time limit and retries with
  backoff when it raises (the database was unreachable, say).

The database stays the source of truth:

* Enqueue only after the generation row is committed: `run_enqueue_after_commit` sends the
  task from the session's ``after_commit`` hook (a rolled-back start sends nothing). A queued
  run that has not started after ``RUN_QUEUED_REQUEUE_SECONDS`` (the process died between
  the commit and the send, Redis was down) is sent again by `runs_recover`, a scheduler job.
* The task claims its run with `generations.generation_mark_running` (``queued -> running``
  under the row lock): a redelivered or duplicated task finds it running and does nothing.
* The claiming worker holds a lease (``worker_id``, ``lease_expires_at``) and renews it every
  third of ``RUN_LEASE_SECONDS`` while the provider works. A running run whose lease has
  passed belongs to a dead worker: `runs_recover` fails it with ``worker_lost`` and releases
  its hold with the same key as every other completion path, so credits move once. The
  15-minute sweep (`services.generation_sweep`) stays as the last net.
* Text streams into ``generations.output_text`` while the run is ``running`` (at most every
  half second, only while still running); the final text is written when the run completes.

Live status: with ``REDIS_URL`` set, a worker publishes each claim, streamed text and
completion on the run's organization channel (`run_event_publish`); Studio waits on it
(`run_events_wait`) between its reads, so a change shows at once. Without Redis, and for what is
not published (recovery, operator actions), the page's light poll shows it within seconds.

Operators: `run_requeue` sends a queued run again; `run_force_fail` fails and releases a
queued or running one now. Both are audited and idempotent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, update
from sqlmodel import Session, col, select

from core import db
from core.clock import utcnow
from core.settings import get_settings
from models import Generation, User
from models.enums import GenerationStatus
from services import credits, generations, policy
from services.audit import audit_record
from services.credits import HoldAlreadyClosed
from services.error_codes import Code
from services.errors import Conflict, NotFound, error_with_code
from services.generation_keys import release_key
from services.providers.limits import deadline_for

log = logging.getLogger(__name__)

QUEUE_NAME = "runs"
ACTOR_NAME = "run_generation"
STREAM_FLUSH_SECONDS = 0.5
WORKER_LOST_REASON = (
    "The worker running this stopped unexpectedly; your credits were returned. Retry it."
)
STOPPED_REASON = "Stopped by platform support; your credits were returned. Retry it when ready."
_PENDING_KEY = "run_engine_pending"
_HOOKED_KEY = "run_engine_hooked"
# Redis broker (read when the broker is built): a worker is dead after RUN_REDIS_HEARTBEAT_MS
# without a heartbeat; RUN_REDIS_MAINTENANCE_CHANCE broker commands in a million also requeue
# the messages of dead workers; RUN_REDIS_NAMESPACE prefixes every key (one queue per
# deployment, or per test run, on a shared Redis).
REDIS_HEARTBEAT_TIMEOUT_MS = 30000
REDIS_MAINTENANCE_CHANCE = 1000
REDIS_NAMESPACE = "dramatiq"


def worker_id() -> str:
    """This process, as written into the runs it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --- enqueue ----------------------------------------------------------------------------------


def run_enqueue_after_commit(*, session: Session, generation_id: int) -> None:
    """Send the run's task once `session` commits (never if it rolls back)."""
    session.info.setdefault(_PENDING_KEY, []).append(generation_id)
    if session.info.get(_HOOKED_KEY):
        return
    session.info[_HOOKED_KEY] = True
    event.listen(session, "after_commit", _send_pending)
    event.listen(session, "after_rollback", _drop_pending)


def _send_pending(session: Session) -> None:
    pending, session.info[_PENDING_KEY] = session.info.get(_PENDING_KEY, []), []
    for generation_id in pending:
        try:
            run_submit(generation_id)
        except Exception:  # noqa: BLE001 - committed: `runs_recover` sends it again
            log.exception("run %s could not be sent; the requeue job will send it", generation_id)


def _drop_pending(session: Session) -> None:
    session.info[_PENDING_KEY] = []


def run_submit(generation_id: int) -> None:
    """Hand a committed queued run to the executor of the configured mode."""
    if get_settings().run_queue == "redis":
        redis_actor().send(generation_id)
    else:
        _inline().submit(generation_id)


def report_submit(report_id: int) -> None:
    """Hand a committed queued Competitor Intel report to the executor (services/intel/runner.py)."""
    if get_settings().run_queue == "redis":
        redis_actor()
        _report_actor.send(report_id)
    else:
        _inline().submit_report(report_id)


# --- the task ---------------------------------------------------------------------------------


class LeaseRenewal:
    """Renews a worker's lease on the running row it claimed (a run or a report) until stopped.

    The renewal only touches the row while it is still running and still this worker's, so a
    row the sweep took back or another worker reclaimed is left alone.
    """

    def __init__(self, table: Any, row_id: int, owner: str, seconds: float, *, label: str = "run"):
        self.table, self.row_id, self.owner, self.seconds = table, row_id, owner, seconds
        self.label = label
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"{label}-lease-{row_id}", daemon=True
        )

    def __enter__(self) -> LeaseRenewal:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                with db.session_scope() as session:
                    session.execute(
                        update(self.table)
                        .where(
                            col(self.table.id) == self.row_id,
                            col(self.table.status) == GenerationStatus.running.value,
                            col(self.table.worker_id) == self.owner,
                        )
                        .values(lease_expires_at=utcnow() + timedelta(seconds=self.seconds))
                    )
            except Exception:  # noqa: BLE001 - a missed renewal is retried at the next beat
                log.warning("%s %s: lease not renewed", self.label, self.row_id, exc_info=True)


class _Stream:
    """Collects text deltas and writes them into the running run at most every half second."""

    def __init__(self, generation_id: int, org_id: int | None = None):
        self.generation_id = generation_id
        self.org_id = org_id
        self.text = ""
        self._written_at = 0.0

    def __call__(self, piece: str) -> None:
        self.text += piece if isinstance(piece, str) else ""
        now = time.monotonic()
        if now - self._written_at >= STREAM_FLUSH_SECONDS:
            self._written_at = now
            self._write()

    def _write(self) -> None:
        try:
            with db.session_scope() as session:
                session.execute(
                    update(Generation)
                    .where(
                        col(Generation.id) == self.generation_id,
                        col(Generation.status) == GenerationStatus.running.value,
                    )
                    .values(output_text=self.text.replace("\x00", ""))
                )
        except Exception:  # noqa: BLE001 - streaming is a courtesy; the final text is kept
            log.warning("run %s: streamed text not written", self.generation_id, exc_info=True)
            return
        run_event_publish(org_id=self.org_id, generation_id=self.generation_id, status="running")


def run_task(generation_id: int) -> str:
    """Claim and run one generation; the final status, or ``"skipped"`` if not claimed.

    The same code runs in the inline threads and in Dramatiq workers.
    """
    settings = get_settings()
    owner = worker_id()
    with db.new_session() as session:
        try:
            claimed = generations.generation_mark_running(
                session=session,
                generation_id=generation_id,
                worker_id=owner,
                lease_seconds=settings.run_lease_seconds,
            )
        except NotFound:
            return "skipped"
        if not claimed:
            return "skipped"
        org_id = session.get(Generation, generation_id).org_id
    run_event_publish(org_id=org_id, generation_id=generation_id, status="running")
    with (
        LeaseRenewal(Generation, generation_id, owner, settings.run_lease_seconds),
        db.new_session() as session,
    ):
        done = generations.generation_execute(
            session=session, generation_id=generation_id, on_delta=_Stream(generation_id, org_id)
        )
    run_event_publish(org_id=org_id, generation_id=generation_id, status=done.status)
    return done.status


# --- live status (Redis pub/sub) --------------------------------------------------------------

_publisher: Any = None
# One subscriber client per event loop (a client belongs to the loop it was made on).
_subscribers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def run_events_channel(org_id: int) -> str:
    return f"{os.environ.get('RUN_REDIS_NAMESPACE', REDIS_NAMESPACE)}:run-events:{org_id}"


def run_event_publish(*, org_id: int | None, generation_id: int, status: str) -> None:
    """Tell the organization's open Studio pages that a run changed (no-op without Redis)."""
    global _publisher
    url = get_settings().redis_url
    if not url or org_id is None:
        return
    try:
        import redis

        if _publisher is None:
            _publisher = redis.Redis.from_url(url, socket_timeout=2)
        _publisher.publish(
            run_events_channel(org_id),
            json.dumps({"generation_id": generation_id, "status": status}),
        )
    except Exception:  # noqa: BLE001 - the pages' poll shows the change a moment later
        log.warning("run %s: status not published", generation_id, exc_info=True)


async def run_events_wait(*, org_id: int | None, timeout: float) -> bool:
    """Wait up to `timeout` seconds for a run event of the organization; True if one came.

    Without Redis (or if it fails) this simply waits, and the caller's poll reads the changes.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    url = get_settings().redis_url
    if not url or org_id is None:
        await asyncio.sleep(timeout)
        return False
    pubsub = None
    try:
        import redis.asyncio as aioredis

        client = _subscribers.get(loop)
        if client is None:
            client = _subscribers[loop] = aioredis.Redis.from_url(url)
        pubsub = client.pubsub()
        await pubsub.subscribe(run_events_channel(org_id))
        while (left := deadline - loop.time()) > 0:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None:
                return True
        return False
    except Exception:  # noqa: BLE001 - fall back to the poll
        log.warning("run events: Redis subscription failed", exc_info=True)
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        return False
    finally:
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception:  # noqa: BLE001
                pass


# --- inline mode ------------------------------------------------------------------------------


class _InlineExecutor:
    """Worker threads in this process. Under pytest, runs are only recorded unless started."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.paused = "pytest" in sys.modules
        self.submitted: list[int] = []
        self.reports_submitted: list[int] = []  # Competitor Intel reports

    def submit(self, generation_id: int) -> None:
        self.submitted.append(generation_id)
        if self.paused:
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=get_settings().run_inline_threads, thread_name_prefix="run-worker"
                )
            pool = self._pool
        pool.submit(self._run, generation_id)

    def submit_report(self, report_id: int) -> None:
        self.reports_submitted.append(report_id)
        if self.paused:
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=get_settings().run_inline_threads, thread_name_prefix="run-worker"
                )
            pool = self._pool
        pool.submit(self._run_report, report_id)

    @staticmethod
    def _run_report(report_id: int) -> None:
        from services.intel.runner import report_task

        try:
            report_task(report_id)
        except Exception:  # noqa: BLE001 - the lease and the sweep finish what is left
            log.exception("report %s: the task failed", report_id)

    @staticmethod
    def _run(generation_id: int) -> None:
        try:
            run_task(generation_id)
        except Exception:  # noqa: BLE001 - the lease and the sweep finish what is left
            log.exception("run %s: the task failed", generation_id)


_inline_executor = _InlineExecutor()


def _inline() -> _InlineExecutor:
    return _inline_executor


def inline_executor() -> _InlineExecutor:
    """The inline executor of this process (tests start it with ``.paused = False``)."""
    return _inline_executor


# --- redis mode (Dramatiq) --------------------------------------------------------------------

_actor: Any = None
_probe_actor: Any = None
_report_actor: Any = None
REPORT_ACTOR_NAME = "run_competitor_report"
_actor_lock = threading.Lock()
PROBE_ACTOR_NAME = "queue_probe"


def redis_broker_build(url: str) -> Any:
    """A Dramatiq Redis broker with the default middleware (time limit, retries, age limit)."""
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(
        url=url,
        namespace=os.environ.get("RUN_REDIS_NAMESPACE", REDIS_NAMESPACE),
        heartbeat_timeout=int(
            os.environ.get("RUN_REDIS_HEARTBEAT_MS", str(REDIS_HEARTBEAT_TIMEOUT_MS))
        ),
        maintenance_chance=int(
            os.environ.get("RUN_REDIS_MAINTENANCE_CHANCE", str(REDIS_MAINTENANCE_CHANCE))
        ),
    )


def redis_actor() -> Any:
    """The Dramatiq actor for runs on this process's broker (declared once)."""
    global _actor
    with _actor_lock:
        if _actor is None:
            import dramatiq

            broker = redis_broker_build(get_settings().redis_url)
            dramatiq.set_broker(broker)
            # Past the longest provider deadline plus a margin: a run ends itself before this.
            limit_ms = int((deadline_for("video") + 120) * 1000)
            _actor = dramatiq.actor(
                _redis_run,
                actor_name=ACTOR_NAME,
                queue_name=QUEUE_NAME,
                broker=broker,
                max_retries=5,
                min_backoff=1000,
                max_backoff=60_000,
                time_limit=limit_ms,
            )
            global _probe_actor
            _probe_actor = dramatiq.actor(
                _queue_probe,
                actor_name=PROBE_ACTOR_NAME,
                queue_name=QUEUE_NAME,
                broker=broker,
                max_retries=0,
            )
            global _report_actor
            _report_actor = dramatiq.actor(
                _redis_report,
                actor_name=REPORT_ACTOR_NAME,
                queue_name=QUEUE_NAME,
                broker=broker,
                max_retries=5,
                min_backoff=1000,
                max_backoff=60_000,
                time_limit=limit_ms,
            )
        return _actor


def queue_probe_actor() -> Any:
    """A task that does nothing but note when a worker picked it up (queue health, benchmarks).

    ``queue_probe_actor().send(list_key, time.time())``: the worker appends the seconds between
    the send and the pickup to the Redis list `list_key` (kept for an hour).
    """
    redis_actor()
    return _probe_actor


_probe_client: Any = None


def _queue_probe(list_key: str, sent_at: float) -> None:
    global _probe_client
    import redis

    waited = time.time() - float(sent_at)
    if _probe_client is None:
        _probe_client = redis.Redis.from_url(get_settings().redis_url)
    client = _probe_client
    client.rpush(str(list_key), f"{waited:.6f} {time.time():.6f}")
    client.expire(str(list_key), 3600)


def _redis_run(generation_id: int) -> None:
    run_task(int(generation_id))


def _redis_report(report_id: int) -> None:
    from services.intel.runner import report_task

    report_task(int(report_id))


# --- recovery (scheduler job) -----------------------------------------------------------------


@dataclass
class RecoverResult:
    """What one `runs_recover` pass did. `items`: runs failed plus runs sent again."""

    lost: int = 0
    released_millicredits: int = 0
    requeued: int = 0

    @property
    def items(self) -> int:
        return self.lost + self.requeued


def _fail_and_release(session: Session, generation: Generation, *, code: str, reason: str) -> int:
    """Fail a queued/running run (locked by the caller) and release its hold; credits moved."""
    released = 0
    try:
        entry = credits.credits_release(
            session=session,
            idempotency_key=release_key(generation.id),
            generation_id=generation.id,
            reason=f"{code}: {reason}"[:300],
        )
        released = abs(getattr(entry, "amount_millicredits", 0) or 0)
    except HoldAlreadyClosed:
        pass
    now = utcnow()
    generation.failure_code = code
    generation.failure_reason = reason[:1000]
    generation.finished_at = now
    generation.lease_expires_at = None
    generations._push_status(generation, GenerationStatus.failed, code=code)  # noqa: SLF001
    session.add(generation)
    session.add(
        generations.usage_event_for(
            generation, outcome="failed", units=0, millicredits=0, provider_units=None, at=now
        )
    )
    return released


def _lock_candidates(session: Session, query: Any) -> list[Generation]:
    query = query.with_for_update(skip_locked=True) if db.is_postgres(session) else query
    return list(session.exec(query.execution_options(populate_existing=True)))


def runs_recover(*, batch: int = 100) -> RecoverResult:
    """Fail and release runs of dead workers; send again queued runs that never started.

    One short transaction per run (rows locked with ``SKIP LOCKED`` on PostgreSQL), so two
    schedulers never handle one run twice and a run being completed is left to its worker.
    """
    settings = get_settings()
    result = RecoverResult()
    now = utcnow()
    with db.new_session() as session:
        lost_ids = list(
            session.exec(
                select(Generation.id)
                .where(
                    col(Generation.status) == GenerationStatus.running.value,
                    col(Generation.lease_expires_at).is_not(None),
                    col(Generation.lease_expires_at) < now,
                )
                .limit(batch)
            )
        )
    for generation_id in lost_ids:
        with db.session_scope() as session:
            rows = _lock_candidates(
                session,
                select(Generation).where(
                    col(Generation.id) == generation_id,
                    col(Generation.status) == GenerationStatus.running.value,
                    col(Generation.lease_expires_at) < now,
                ),
            )
            for generation in rows:
                result.released_millicredits += _fail_and_release(
                    session, generation, code=Code.worker_lost.value, reason=WORKER_LOST_REASON
                )
                result.lost += 1
                log.warning("run %s: worker %s lost", generation.public_id, generation.worker_id)
    cutoff = now - timedelta(seconds=settings.run_queued_requeue_seconds)
    resend: list[int] = []
    with db.session_scope() as session:
        rows = _lock_candidates(
            session,
            select(Generation)
            .where(
                col(Generation.status) == GenerationStatus.queued.value,
                func.coalesce(Generation.enqueued_at, Generation.created_at) < cutoff,
                col(Generation.created_at) > now - timedelta(minutes=15),
            )
            .limit(batch),
        )
        for generation in rows:
            generation.enqueued_at = now
            session.add(generation)
            resend.append(generation.id)
    for generation_id in resend:  # after the commit: the task finds enqueued_at written
        run_submit(generation_id)
    result.requeued = len(resend)
    from services.intel.runner import reports_recover  # Competitor Intel reports, same rules

    try:
        reports = reports_recover(now=now, batch=batch)
    except Exception:  # noqa: BLE001 - the generations' recovery stands; reports retry next run
        log.exception("runs_recover: Competitor Intel reports could not be recovered")
        return result
    result.lost += reports.lost
    result.requeued += reports.requeued
    result.released_millicredits += reports.released_millicredits
    return result


# --- operator recovery ------------------------------------------------------------------------


def _operator_generation(session: Session, actor: User, public_id: str) -> Generation:
    generation = session.exec(
        select(Generation)
        .where(Generation.public_id == public_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if generation is None:
        raise NotFound("This generation does not exist.")
    policy.require(
        policy.actor_for(session=session, user=actor, org_id=generation.org_id),
        policy.Action.operator_support,
        policy.target_for(session=session, org_id=generation.org_id),
    )
    return generation


def run_requeue(*, session: Session, actor: User, public_id: str) -> Generation:
    """Send a queued run to the executor again (after the caller commits); audited.

    Sending twice is harmless: the first delivery claims the run, later ones do nothing.

    Raises:
        NotFound: no such run. PermissionDenied: not a platform operator.
        Conflict (``run_not_queued``): it already started or finished.
    """
    generation = _operator_generation(session, actor, public_id)
    if generation.status != GenerationStatus.queued.value:
        raise error_with_code(
            Code.run_not_queued,
            f"{generation.public_id} is {generation.status}, not queued; only a queued run can "
            "be sent again. Stop a stuck running one instead.",
            base=Conflict,
        )
    generation.enqueued_at = utcnow()
    session.add(generation)
    audit_record(
        session=session,
        action="generation.requeued",
        actor_user_id=actor.id,
        org_id=generation.org_id,
        target_type="generation",
        target_id=generation.public_id,
    )
    run_enqueue_after_commit(session=session, generation_id=generation.id)
    return generation


def run_force_fail(
    *, session: Session, actor: User, public_id: str, reason: str = ""
) -> Generation:
    """Fail a queued or running run now and release its hold (once); audited.

    A run that already finished is returned unchanged (nothing moves, nothing is audited),
    so pressing it twice is harmless. The caller commits. A worker still working on it keeps
    its late result without charging.

    Raises:
        NotFound: no such run. PermissionDenied: not a platform operator.
    """
    generation = _operator_generation(session, actor, public_id)
    if generation.status not in generations.ACTIVE_STATUSES:
        return generation
    released = _fail_and_release(
        session, generation, code=Code.stopped_by_operator.value, reason=STOPPED_REASON
    )
    audit_record(
        session=session,
        action="generation.force_failed",
        actor_user_id=actor.id,
        org_id=generation.org_id,
        target_type="generation",
        target_id=generation.public_id,
        details={"reason": reason[:300], "released_millicredits": released},
    )
    return generation
