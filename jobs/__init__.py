"""Background jobs: APScheduler job functions, the run recorder and the scheduler entry point.

* ``SCHEDULER=inline`` (default): ``core.startup.on_app_start`` starts a BackgroundScheduler in
  the web app's backend process (once per process).
* ``SCHEDULER=off`` + ``python -m jobs``: a BlockingScheduler as its own process.

Every job is safe to run in several processes at once (row locks, ``SKIP LOCKED``, unique
idempotency keys), and every run is recorded in ``job_runs`` through ``jobs.runner``.
"""
