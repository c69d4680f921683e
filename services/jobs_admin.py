"""Background job runs for operators: what ran, where, how long, how many items and errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core.clock import as_utc
from models import JobRun


@dataclass(frozen=True)
class JobRunView:
    """One recorded run of a background job (read model; no table row leaves this module)."""

    id: int
    job_id: str
    host: str
    status: str
    items: int
    errors: int
    error_detail: str
    started_at: datetime
    finished_at: datetime | None

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def job_runs_recent(
    *,
    session: Session,
    job_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[JobRunView]:
    """The newest job runs first, optionally for one job or one status ("failed", "running")."""
    query = select(JobRun).order_by(col(JobRun.started_at).desc(), col(JobRun.id).desc())
    if job_id:
        query = query.where(JobRun.job_id == job_id)
    if status:
        query = query.where(JobRun.status == status)
    rows = session.exec(query.limit(max(1, min(limit, 1000)))).all()
    return [
        JobRunView(
            id=row.id,
            job_id=row.job_id,
            host=row.host,
            status=row.status,
            items=row.items,
            errors=row.errors,
            error_detail=row.error_detail or "",
            started_at=as_utc(row.started_at),
            finished_at=as_utc(row.finished_at),
        )
        for row in rows
    ]
