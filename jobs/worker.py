"""`python -m jobs worker`: a run worker process on the Dramatiq Redis queue (RUN_QUEUE=redis).

One process per core is a good start; each runs ``RUN_WORKER_THREADS`` runs at once (they
mostly wait on providers). SIGTERM/SIGINT stop it cleanly: it takes no new runs and finishes
the ones it holds. A worker killed outright stops renewing its leases and its Redis heartbeat:
its unacknowledged messages go back to the queue and its running runs are failed and refunded
by the `runs_recover` job once their lease passes.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading


def worker_main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        from core.settings import get_settings

        settings = get_settings()
    except Exception as exc:  # refuse to start with an unsafe configuration
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    if settings.run_queue != "redis":
        print(
            "RUN_QUEUE is not redis: runs execute inside the web process (inline mode), so no "
            "worker is needed. Set RUN_QUEUE=redis and REDIS_URL to run workers.",
            file=sys.stderr,
        )
        return 2
    from dramatiq import Worker

    from services.run_engine import QUEUE_NAME, redis_actor, worker_id

    threads = settings.run_worker_threads
    if len(argv) >= 2 and argv[0] == "--threads" and argv[1].isdigit():
        threads = max(1, int(argv[1]))
    actor = redis_actor()
    worker = Worker(actor.broker, queues={QUEUE_NAME}, worker_threads=threads, worker_timeout=200)
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        logging.getLogger("creative_studio.worker").info(
            "worker stopping (%s)", signal.Signals(signum).name
        )
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()
    logging.getLogger("creative_studio.worker").info(
        "run worker %s started: queue %s, %d threads", worker_id(), QUEUE_NAME, threads
    )
    stop.wait()
    worker.stop(timeout=30_000)
    actor.broker.close()
    return 0
