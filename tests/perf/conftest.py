"""Collect the benchmark scripts (`bench_*.py`) too, and choose their size.

Asked for on their own (`make bench`, `pytest tests/perf`, `pytest tests/perf/bench_ledger.py`)
the benchmarks measure their full sizes; inside the whole suite they run a small size. Either
way they only print. ``BENCH_SIZE=small`` or ``BENCH_SIZE=full`` decides explicitly, e.g.
``BENCH_SIZE=small pytest tests/perf -k ledger -s`` while working on the ledger.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_PERF_DIR = Path(__file__).resolve().parent


def pytest_collect_file(parent, file_path):
    # A bench file named on the command line is collected by pytest itself.
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and not parent.session.isinitpath(file_path)
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def bench_size(request) -> str:
    """ "full" when only benchmarks were asked for (or BENCH_SIZE=full), else "small"."""
    chosen = os.environ.get("BENCH_SIZE", "").strip().lower()
    if chosen in ("small", "full"):
        return chosen
    where = request.config.invocation_params.dir
    asked = [(where / str(arg).split("::")[0]).resolve() for arg in request.config.args]
    only_benchmarks = bool(asked) and all(
        path == _PERF_DIR or _PERF_DIR in path.parents for path in asked
    )
    return "full" if only_benchmarks else "small"
