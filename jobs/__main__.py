"""`python -m jobs`: the scheduler as its own process (use with SCHEDULER=off in the web app).

`python -m jobs worker [--threads N]`: a run worker instead (RUN_QUEUE=redis; see jobs/worker.py).

SIGTERM/SIGINT stop it cleanly: no new runs start, running jobs finish and are recorded.

Environment (tests and operations):
  JOBS_RUN_ONCE=1          run every registered job once, right away, then exit
  JOBS_ONLY=a,b            register only these job ids
  JOBS_INTERVAL_SECONDS=n  override every job's interval
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

from jobs.scheduler import registered_jobs_text, scheduler_build

log = logging.getLogger("creative_studio.jobs")


def main() -> int:
    if sys.argv[1:2] == ["worker"]:
        from jobs.worker import worker_main

        return worker_main(sys.argv[2:])
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        from core.settings import get_settings

        settings = get_settings()
    except Exception as exc:  # refuse to start with an unsafe configuration
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    run_once = os.environ.get("JOBS_RUN_ONCE") == "1"
    scheduler = scheduler_build(blocking=True, run_immediately=run_once)
    job_ids = {job.id for job in scheduler.get_jobs()}
    log.info(
        "scheduler starting (database=%s, %d jobs%s)",
        settings.database_url.split("@")[-1],
        len(job_ids),
        ", run once" if run_once else "",
    )
    for line in registered_jobs_text(scheduler):
        log.info("registered job %s", line)

    stopper: list[threading.Thread] = []

    def stop(reason: str) -> None:
        if stopper:
            return
        log.info("scheduler stopping (%s); waiting for running jobs", reason)
        # shutdown(wait=True) waits for running jobs; never block the signal handler with it.
        thread = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=False)
        stopper.append(thread)
        thread.start()

    def on_signal(signum, _frame) -> None:
        stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if run_once:
        done: set[str] = set()
        lock = threading.Lock()

        def on_event(event) -> None:
            with lock:
                done.add(event.job_id)
                if job_ids <= done:
                    stop("every job ran once")

        scheduler.add_listener(on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    scheduler.start()  # blocks until shutdown
    for thread in stopper:
        thread.join()
    log.info("scheduler stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
