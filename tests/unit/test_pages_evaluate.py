"""Every page of the app evaluates (the first step of `reflex run`), in seconds, without npm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_evaluates():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_pages.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pages evaluated" in result.stdout
