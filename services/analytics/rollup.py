"""The analytics roll-up: usage events summed per UTC day, up to a watermark.

Invariants:

* For every day with a watermark row, `analytics_rollups` holds exactly the sums of that
  day's usage events with ``occurred_at < rolled_through`` (one transaction writes both), so
  a query adds the roll-up and the raw events from the watermark on and counts each event
  once.
* A day is recomputed from its events (delete the day's rows, insert the new sums), never
  added to, so running it again changes nothing. Two processes rolling up the same day take
  turns: a PostgreSQL advisory lock per day (SQLite serializes writers with BEGIN IMMEDIATE).
* The watermark trails the clock by `ROLLUP_LAG`, so usage committed a few minutes after the
  time it is stamped with is still read raw. Usage stamped even earlier than that (before the
  watermark) appears with the next roll-up, which recomputes today and yesterday every run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import case, delete, func, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import db
from core.clock import as_utc, utcnow
from models import AnalyticsRollup, AnalyticsRollupWatermark, Generation, UsageEvent
from services.analytics.common import (
    FAILED_OUTCOMES,
    SUCCEEDED,
    day_bounds,
    days,
    job_session,
    utc_day,
)

log = logging.getLogger(__name__)

ROLLUP_LAG = timedelta(minutes=10)
RECENT_DAYS = 2  # today and yesterday, every run
BACKFILL_DAYS_PER_RUN = 31  # days never (or only partly) rolled up, newest first
_ROLLUP_LOCK_CLASS = 74_014


@dataclass
class RollupResult:
    items: int = 0  # days rolled up
    groups: int = 0
    errors: int = 0
    error_details: list[str] = field(default_factory=list)


def _lock_day(session: Session, day: date) -> None:
    if db.is_postgres(session):
        session.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:c AS integer), CAST(:k AS integer))"),
            {"c": _ROLLUP_LOCK_CLASS, "k": day.toordinal()},
        )


def analytics_rollup_day(*, session: Session, day: date, now: datetime | None = None) -> int:
    """Recompute one UTC day's roll-up up to `now - ROLLUP_LAG` and move its watermark.

    Flushes; the caller commits (the rows and the watermark must commit together).
    Returns the number of groups written.
    """
    now = as_utc(now or utcnow())
    start, end = day_bounds(day)
    through = min(end, now - ROLLUP_LAG)
    if through <= start:
        return 0
    _lock_day(session, day)
    project = func.coalesce(UsageEvent.project_id, 0)
    member = func.coalesce(UsageEvent.user_id, 0)
    api_key = func.coalesce(Generation.api_key_id, 0)
    groups = session.exec(
        select(
            UsageEvent.org_id,
            UsageEvent.source,
            project,
            member,
            api_key,
            UsageEvent.model_key,
            func.max(UsageEvent.modality),
            func.count(),
            func.sum(case((col(UsageEvent.outcome).in_(FAILED_OUTCOMES), 1), else_=0)),
            func.sum(case((UsageEvent.outcome != SUCCEEDED, 1), else_=0)),
            func.coalesce(func.sum(UsageEvent.units), 0),
            func.coalesce(func.sum(UsageEvent.millicredits), 0),
        )
        .select_from(UsageEvent)
        .outerjoin(Generation, Generation.id == UsageEvent.generation_id)
        .where(col(UsageEvent.occurred_at) >= start, col(UsageEvent.occurred_at) < through)
        .group_by(UsageEvent.org_id, UsageEvent.source, project, member, api_key)
        .group_by(UsageEvent.model_key)
    ).all()
    session.exec(delete(AnalyticsRollup).where(AnalyticsRollup.day == day))
    rows = [
        {
            "org_id": org_id,
            "day": day,
            "source": source,
            "project_id": int(project_id),
            "user_id": int(user_id),
            "api_key_id": int(api_key_id),
            "model_key": model_key,
            "modality": modality,
            "runs": int(runs),
            "failures": int(failures or 0),
            "refunds": int(refunds or 0),
            "units": int(units),
            "millicredits": int(millicredits),
            "updated_at": now,
        }
        for (
            org_id,
            source,
            project_id,
            user_id,
            api_key_id,
            model_key,
            modality,
            runs,
            failures,
            refunds,
            units,
            millicredits,
        ) in groups
    ]
    for chunk in range(0, len(rows), 1000):
        session.exec(insert(AnalyticsRollup).values(rows[chunk : chunk + 1000]))
    watermark = session.get(AnalyticsRollupWatermark, day, populate_existing=True)
    if watermark is None:
        watermark = AnalyticsRollupWatermark(day=day, rolled_through=through)
    watermark.rolled_through = through
    watermark.rolled_up_at = now
    watermark.events = sum(row["runs"] for row in rows)
    session.add(watermark)
    session.flush()
    return len(rows)


def _days_to_roll(session: Session, today: date) -> list[date]:
    """Today and yesterday, then days with events that lack a complete watermark."""
    wanted = [today - timedelta(days=offset) for offset in range(RECENT_DAYS)]
    earliest = session.exec(select(func.min(UsageEvent.occurred_at))).one()
    if earliest is None:
        return wanted
    first = utc_day(earliest)
    complete = {
        row.day
        for row in session.exec(
            select(AnalyticsRollupWatermark).where(AnalyticsRollupWatermark.day >= first)
        )
        if as_utc(row.rolled_through) >= day_bounds(row.day)[1]
    }
    backlog = [
        day for day in days(first, today - timedelta(days=RECENT_DAYS)) if day not in complete
    ]
    return wanted + sorted(backlog, reverse=True)[:BACKFILL_DAYS_PER_RUN]


def analytics_rollup_recent(
    *, engine: Engine | None = None, now: datetime | None = None
) -> RollupResult:
    """The job: roll up today and yesterday, and catch up on days never rolled up.

    Each day in a transaction of its own; a failing day is reported and retried next run.
    """
    now = as_utc(now or utcnow())
    result = RollupResult()
    with job_session(engine) as session:
        wanted = _days_to_roll(session, now.date())
    for day in wanted:
        try:
            with job_session(engine) as session:
                result.groups += analytics_rollup_day(session=session, day=day, now=now)
                session.commit()
            result.items += 1
        except Exception as exc:  # the other days still roll up; this one next run
            result.errors += 1
            result.error_details.append(f"{day}: {exc.__class__.__name__}: {exc}"[:300])
            log.exception("analytics roll-up of %s failed", day)
    return result


def last_rollup_at(*, session: Session) -> datetime | None:
    """When the roll-up job last wrote a watermark (any day)."""
    return as_utc(session.exec(select(func.max(AnalyticsRollupWatermark.rolled_up_at))).one())
