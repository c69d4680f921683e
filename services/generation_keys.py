"""The idempotency keys of a generation's credit hold, settlement and release. Defined once.

``services.credits`` moves credits at most once per key, and a hold can be closed only once.
The studio's completion path (`services.generations`) and the stuck-generation sweep
(`services.generation_sweep`) both close a hold with `release_key`; because they use the
same key, a generation is refunded exactly once, whichever of them gets there first.
"""

from __future__ import annotations


def hold_key(generation_id: int) -> str:
    """The key of the hold taken when a generation starts."""
    return f"generation:{generation_id}:hold"


def settle_key(generation_id: int) -> str:
    """The key of the settlement of a generation that succeeded (charges the actual cost)."""
    return f"generation:{generation_id}:settle"


def release_key(generation_id: int) -> str:
    """The key of the release of a generation that failed or timed out (refunds the hold)."""
    return f"generation:{generation_id}:release"


__all__ = ["hold_key", "release_key", "settle_key"]
