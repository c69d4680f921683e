"""One wrapper records every job run in `job_runs`: start, end, items, errors, error detail."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core import db
from core.clock import utcnow
from models import JobRun
from models.enums import JobRunStatus

log = logging.getLogger("creative_studio.jobs")

MAX_ERROR_DETAIL = 4000
_HOST = f"{socket.gethostname()}"


@dataclass(frozen=True)
class JobOutcome:
    """What a job function reports: items handled, per-item errors and a short detail."""

    items: int = 0
    errors: int = 0
    error_detail: str = ""


def host_label() -> str:
    """Which process ran the job (host:pid), shown to operators."""
    import os

    return f"{_HOST}:{os.getpid()}"[:120]


def _outcome(value: Any) -> JobOutcome:
    """Accept a JobOutcome, an int (items), None, or a result with items/errors/error_details."""
    if isinstance(value, JobOutcome):
        return value
    if value is None:
        return JobOutcome()
    if isinstance(value, int):
        return JobOutcome(items=value)
    details = getattr(value, "error_details", None) or []
    return JobOutcome(
        items=int(getattr(value, "items", 0)),
        errors=int(getattr(value, "errors", 0)),
        error_detail="\n".join(str(d) for d in details),
    )


def _record_start(job_id: str) -> int | None:
    try:
        with db.session_scope() as session:
            run = JobRun(job_id=job_id, host=host_label(), status=JobRunStatus.running.value)
            session.add(run)
            session.flush()
            return run.id
    except Exception:  # the database is down: still try the job, say so in the log
        log.exception("job %s: could not record the start of the run", job_id)
        return None


def _record_end(run_id: int | None, job_id: str, status: str, outcome: JobOutcome) -> None:
    if run_id is None:
        return
    try:
        with db.session_scope() as session:
            run = session.get(JobRun, run_id)
            if run is None:
                return
            run.status = status
            run.items = outcome.items
            run.errors = outcome.errors
            run.error_detail = outcome.error_detail[:MAX_ERROR_DETAIL] or None
            run.finished_at = utcnow()
            session.add(run)
    except Exception:
        log.exception("job %s: could not record the end of run %s", job_id, run_id)


def job_run_recorded(job_id: str, function: Callable[[], Any]) -> JobOutcome:
    """Run `function` once and record the run; never raises (the scheduler keeps going).

    A job that raises is recorded as ``failed`` with the exception in ``error_detail``; a job
    that returns per-item errors is ``failed`` only when it handled nothing at all.
    """
    run_id = _record_start(job_id)
    started = time.monotonic()
    try:
        outcome = _outcome(function())
    except Exception as exc:
        log.exception("job %s failed", job_id)
        outcome = JobOutcome(errors=1, error_detail=f"{exc.__class__.__name__}: {exc}")
        _record_end(run_id, job_id, JobRunStatus.failed.value, outcome)
        return outcome
    status = (
        JobRunStatus.failed.value
        if outcome.errors and not outcome.items
        else JobRunStatus.succeeded.value
    )
    _record_end(run_id, job_id, status, outcome)
    log.info(
        "job %s %s in %.2fs: %d items, %d errors",
        job_id,
        status,
        time.monotonic() - started,
        outcome.items,
        outcome.errors,
    )
    return outcome
