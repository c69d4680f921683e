"""One source of "now" so tests and jobs agree on time (always timezone-aware UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

_frozen: datetime | None = None


def utcnow() -> datetime:
    """Current time in UTC (aware), or the frozen time set by tests."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def freeze(moment: datetime | None) -> None:
    """Freeze (or with None, unfreeze) the clock; for tests and replays."""
    global _frozen
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    _frozen = moment


def as_utc(moment: datetime | None) -> datetime | None:
    """Databases such as SQLite drop tzinfo; read values back as aware UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
