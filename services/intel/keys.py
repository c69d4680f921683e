"""The idempotency keys of a report's credit hold, settlement, release and daily cap unit.

The worker's completion, the lease recovery and the 15-minute sweep all close a report's hold
with `release_key` and give its cap unit back with `cap_key`, so credits and the unit move
exactly once whichever of them gets there first.
"""

from __future__ import annotations


def hold_key(report_id: int) -> str:
    return f"intel-report:{report_id}:hold"


def settle_key(report_id: int) -> str:
    return f"intel-report:{report_id}:settle"


def release_key(report_id: int) -> str:
    return f"intel-report:{report_id}:release"


def cap_key(report_id: int) -> str:
    return f"intel-report:{report_id}:cap"


__all__ = ["cap_key", "hold_key", "release_key", "settle_key"]
