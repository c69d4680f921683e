"""What the analytics modules share: UTC day bounds, sessions for jobs, expressions per database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import db
from core.clock import as_utc

SOURCES: tuple[str, ...] = ("studio", "assistant", "intel", "api")
FAILED_OUTCOMES: tuple[str, ...] = ("failed", "timed_out")
SUCCEEDED = "succeeded"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def utc_day(moment: datetime) -> date:
    return as_utc(moment).date()


def days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def job_session(engine: Engine | None) -> Session:
    """A session of its own, on `engine` when given (benchmarks, tests), else the process one."""
    return Session(engine, expire_on_commit=False) if engine is not None else db.new_session()


def day_of(session: Session, column: Any) -> Any:
    """SQL for the UTC day of a timestamp column (stored as UTC on SQLite, timestamptz on PG)."""
    if db.is_postgres(session):
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def as_date(value: Any) -> date:
    """A day from the database (PostgreSQL gives dates, SQLite text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
