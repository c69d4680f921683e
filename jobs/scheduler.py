"""Build the APScheduler 3 scheduler, and start it inline in the web process (once per process)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from jobs.definitions import JOBS, JobSpec

log = logging.getLogger("creative_studio.jobs")

# Test/ops overrides (environment): every job's interval in seconds, and a subset of job ids.
INTERVAL_OVERRIDE_ENV = "JOBS_INTERVAL_SECONDS"
ONLY_ENV = "JOBS_ONLY"
# Start the inline scheduler under pytest only when a test asks for it.
INLINE_UNDER_PYTEST_ENV = "JOBS_INLINE_UNDER_PYTEST"

JOB_DEFAULTS = {
    "coalesce": True,  # missed runs (sleep, long pause) collapse into one
    "max_instances": 1,  # never two runs of the same job in one process
    "misfire_grace_time": 300,
}

_inline_lock = threading.Lock()
_inline_scheduler: BackgroundScheduler | None = None
_inline_pid: int | None = None


def selected_jobs() -> list[JobSpec]:
    """The jobs to register (all, or the ids listed in JOBS_ONLY)."""
    only = {name.strip() for name in os.environ.get(ONLY_ENV, "").split(",") if name.strip()}
    if not only:
        return list(JOBS)
    unknown = only - {spec.id for spec in JOBS}
    if unknown:
        raise ValueError(f"{ONLY_ENV} names unknown jobs: {', '.join(sorted(unknown))}")
    return [spec for spec in JOBS if spec.id in only]


def _interval_seconds(spec: JobSpec) -> float:
    override = os.environ.get(INTERVAL_OVERRIDE_ENV, "").strip()
    return float(override) if override else float(spec.interval_seconds)


def scheduler_build(*, blocking: bool = False, run_immediately: bool = False) -> BaseScheduler:
    """A scheduler (UTC, in-memory job store, thread pool) with every job registered.

    Job ids are stable (`JobSpec.id`) and re-adding replaces, so a restart never duplicates.

    Args:
        blocking: BlockingScheduler (its own process) instead of BackgroundScheduler.
        run_immediately: first run of every job right at start instead of after one interval.
    """
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(timezone=UTC, job_defaults=dict(JOB_DEFAULTS))
    for spec in selected_jobs():
        options = {}
        if run_immediately:
            options["next_run_time"] = datetime.now(UTC)
        scheduler.add_job(
            spec.run,
            trigger="interval",
            seconds=_interval_seconds(spec),
            id=spec.id,
            name=spec.description,
            replace_existing=True,
            coalesce=JOB_DEFAULTS["coalesce"],
            max_instances=JOB_DEFAULTS["max_instances"],
            misfire_grace_time=JOB_DEFAULTS["misfire_grace_time"],
            **options,
        )
    return scheduler


def registered_jobs_text(scheduler: BaseScheduler) -> list[str]:
    lines = []
    for job in scheduler.get_jobs():
        seconds = int(job.trigger.interval.total_seconds())
        lines.append(f"{job.id} every {seconds}s: {job.name}")
    return lines


# --- inline (inside the web app process) ---------------------------------------------------------


def _under_pytest() -> bool:
    return "pytest" in sys.modules or "PYTEST_CURRENT_TEST" in os.environ


def _launched_by_reflex_cli() -> bool:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return program == "reflex" or sys.argv[0].endswith(os.path.join("reflex", "__main__.py"))


def _in_process_pool_worker() -> bool:
    """A concurrent.futures worker (Reflex compiles the app in one before serving it)."""
    return any(
        frame.filename.endswith(os.path.join("concurrent", "futures", "process.py"))
        for frame in traceback.extract_stack()
    )


def _is_reflex_cli_process() -> bool:
    """A process of the `reflex run|compile|export` command that only compiles the app.

    The backend runs elsewhere: Granian workers (processes named ``granian-worker``, forked
    from the CLI after it preloaded the app in production), uvicorn's reload child in
    development, or a separate `uvicorn`/`granian` process. The scheduler belongs there.
    """
    if not _launched_by_reflex_cli():
        return False
    if multiprocessing.current_process().name == "granian-worker":
        return False
    if multiprocessing.parent_process() is None:
        return True  # the CLI itself (compiling, or preloading the app for forked workers)
    return _in_process_pool_worker()  # the compile worker of `reflex run` in development


def _start_in_forked_worker() -> None:
    """At-fork hook: a Granian worker forked from the preloaded CLI never re-imports the app.

    The child learns its process name only after the fork returns, so check a moment later.
    """

    def later() -> None:
        time.sleep(1.0)
        if multiprocessing.current_process().name == "granian-worker":
            try:
                inline_scheduler_start()
            except Exception:
                log.exception("The inline background-job scheduler could not start")

    threading.Thread(target=later, name="jobs-inline-start", daemon=True).start()


_fork_hook_registered = False


def inline_scheduler_wanted() -> tuple[bool, str]:
    """Whether this process should run the inline scheduler, and why not."""
    from core.settings import get_settings

    if get_settings().scheduler != "inline":
        return False, "SCHEDULER=off (run `python -m jobs` as its own process)"
    if _under_pytest() and os.environ.get(INLINE_UNDER_PYTEST_ENV) != "1":
        return False, "running under pytest"
    if _is_reflex_cli_process():
        return False, "reflex CLI process (compile only)"
    return True, ""


def inline_scheduler_start() -> BackgroundScheduler | None:
    """Start the BackgroundScheduler in this process, once (again after a fork)."""
    global _inline_scheduler, _inline_pid
    global _fork_hook_registered
    wanted, why_not = inline_scheduler_wanted()
    if not wanted:
        log.info("inline scheduler not started: %s", why_not)
        if why_not.startswith("reflex CLI") and not _fork_hook_registered:
            os.register_at_fork(after_in_child=_start_in_forked_worker)
            _fork_hook_registered = True
        return None
    with _inline_lock:
        if _inline_scheduler is not None and _inline_pid == os.getpid():
            return _inline_scheduler
        scheduler = scheduler_build(blocking=False)
        scheduler.start()
        _inline_scheduler, _inline_pid = scheduler, os.getpid()
    log.info(
        "inline scheduler started in pid %s: %s",
        os.getpid(),
        "; ".join(registered_jobs_text(scheduler)),
    )
    return scheduler


def inline_scheduler_stop() -> None:
    global _inline_scheduler, _inline_pid
    with _inline_lock:
        if (
            _inline_scheduler is not None
            and _inline_pid == os.getpid()
            and _inline_scheduler.running
        ):
            _inline_scheduler.shutdown(wait=False)
        _inline_scheduler, _inline_pid = None, None
