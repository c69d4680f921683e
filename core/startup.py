"""Work done once when the web app process starts: refuse bad config, load catalogs."""

from __future__ import annotations

import gc
import logging

from sqlalchemy.exc import OperationalError, ProgrammingError

from core.db import session_scope
from core.settings import get_settings

log = logging.getLogger("creative_studio.startup")
_started = False
# A serving process collects its young objects after this many new ones rather than Python's
# 700: every page open and event allocates thousands that die young, and each collection of
# the older generations walked every tab's state. With 200 open tabs at 190 events/s on one
# worker (tests/perf/bench_sessions.py) p99 went from 16-23 ms to 8-10 ms and the slowest event
# from 130-185 ms to 33-38 ms, memory unchanged (20,000 did as well at p99, its slowest 135 ms).
GC_YOUNG_THRESHOLD = 5_000


def on_app_start() -> None:
    global _started
    if _started:
        return
    _started = True
    settings = get_settings()  # raises InsecureConfiguration in production without a strong secret
    from services.catalog import catalog_sync

    try:
        with session_scope() as session:
            catalog_sync(session=session)
    except (OperationalError, ProgrammingError) as exc:
        log.error(
            "Database schema is missing or outdated (%s). Run: python -m core.manage migrate",
            exc.__class__.__name__,
        )
    log.info(
        "Creative Studio starting: env=%s payments=%s mail=%s scheduler=%s",
        settings.app_env,
        settings.payments_mode,
        settings.mail_mode,
        settings.scheduler,
    )
    # SCHEDULER=inline: background jobs in this process (once per process; never under pytest
    # unless a test asks, never in the `reflex` CLI that only compiles). See jobs/scheduler.py.
    try:
        from jobs.scheduler import inline_scheduler_start

        inline_scheduler_start()
    except Exception:  # the app still serves; the job runs page and the log say why
        log.exception("The inline background-job scheduler could not start")


def gc_tune_for_serving() -> None:
    """Once the web process has started: what start-up made (the app, its pages, catalogs)
    lives as long as the process, so the collector stops walking it (`gc.freeze`), and young
    objects are collected every GC_YOUNG_THRESHOLD allocations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
