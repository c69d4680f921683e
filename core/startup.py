"""Work done once when the web app process starts: refuse bad config, load catalogs."""

from __future__ import annotations

import logging

from sqlalchemy.exc import OperationalError, ProgrammingError

from core.db import session_scope
from core.settings import get_settings

log = logging.getLogger("creative_studio.startup")
_started = False


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
