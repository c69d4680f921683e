"""The web process's collector settings (core.startup.gc_tune_for_serving), in a fresh
interpreter each time: they are process-wide, and this test process keeps Python's defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.startup import GC_YOUNG_THRESHOLD

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_serving_process_stops_walking_what_start_up_made():
    threshold, frozen = _run(
        "import gc\n"
        "import creative_studio.components  # start-up objects of the app's own\n"
        "from core.startup import gc_tune_for_serving\n"
        "gc_tune_for_serving()\n"
        "print(gc.get_threshold()[0], gc.get_freeze_count())\n"
    )
    assert int(threshold) == GC_YOUNG_THRESHOLD
    assert int(frozen) > 10_000


def test_garbage_cycles_made_while_serving_are_still_collected_on_their_own():
    (collected,) = _run(
        "import gc, weakref\n"
        "from core.startup import gc_tune_for_serving\n"
        "gc_tune_for_serving()\n"
        "class Node: pass\n"
        "a, b = Node(), Node()\n"
        "a.other, b.other = b, a\n"
        "gone = weakref.ref(a)\n"
        "del a, b\n"
        f"kept = [[] for _ in range({GC_YOUNG_THRESHOLD * 2})]  # a busy event's allocations\n"
        "print(gone() is None)\n"
    )
    assert collected == "True"
