"""Daily caps: Marketing Assistant messages, Competitor Intel reports and tool runs per UTC day.

One service for every daily cap in the plan catalog. A cap counts per organization and UTC day
and resets at 00:00 UTC (not 24 h after the first use). Taking a unit is atomic across workers:
a conditional `UPDATE ... SET count = count + 1 WHERE count < :allowed RETURNING count`, never a
read-then-write. Each unit is recorded under the idempotency key of what took it, so a retried
take counts once and `cap_release` (a message that failed before its first token, a failed
report) gives the unit back exactly once.

Transactions: `cap_take` and `cap_release` run inside the caller's unit of work (so the unit is
taken together with the row that uses it); nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core import routes
from core.clock import as_utc, utcnow
from models import DailyCapUse, DailyUsageCounter, Plan
from services.error_codes import Code
from services.errors import PlanLimitReached
from services.plan_limits import org_plan


class Cap(StrEnum):
    assistant_messages = "assistant_messages"
    competitor_reports = "competitor_reports"
    tool_runs = "tool_runs"


@dataclass(frozen=True)
class CapSpec:
    plan_field: str  # the Plan column holding the daily allowance (None/-1 = unlimited)
    label: str  # "Marketing Assistant messages"
    unit: str  # "messages"


CAPS: dict[Cap, CapSpec] = {
    Cap.assistant_messages: CapSpec(
        "assistant_messages_per_day", "Marketing Assistant messages", "messages"
    ),
    Cap.competitor_reports: CapSpec(
        "competitor_reports_per_day", "Competitor Intel reports", "reports"
    ),
    Cap.tool_runs: CapSpec("tool_runs_per_day", "tool runs", "runs"),
}

_ORG_WIDE = 0  # DailyUsageCounter.user_id for the organization's own counter


class DailyCapReached(PlanLimitReached):
    """A daily cap is used up; names the cap, plan, used, allowed and when it resets."""

    code = Code.daily_cap_reached.value
    http_status = 429

    def __init__(
        self,
        message: str,
        *,
        cap: str,
        used: int,
        allowed: int,
        plan: str,
        resets_at: datetime,
    ):
        super().__init__(message, limit=cap, used=used, allowed=allowed, plan=plan)
        self.resets_at = resets_at
        self.details["resets_at"] = resets_at.isoformat()
        self.details["upgrade_path"] = "billing"


@dataclass(frozen=True)
class CapStatus:
    """What a cap looks like right now, for the line shown before it is hit."""

    cap: Cap
    label: str
    unit: str
    used: int
    allowed: int | None  # None = unlimited on this plan
    plan_key: str
    plan_name: str
    day: date
    resets_at: datetime

    @property
    def unlimited(self) -> bool:
        return self.allowed is None

    @property
    def remaining(self) -> int | None:
        return None if self.allowed is None else max(self.allowed - self.used, 0)

    @property
    def reached(self) -> bool:
        return self.allowed is not None and self.used >= self.allowed

    def describe(self, now: datetime | None = None) -> str:
        """ "14 of 20 messages left today · resets at 00:00 UTC, in 3 h 12 min"."""
        if self.allowed is None:
            return f"Unlimited {self.unit} on {self.plan_name} ({self.used} used today)"
        return (
            f"{self.remaining} of {self.allowed} {self.unit} left today · "
            f"{resets_in(self.resets_at, now)}"
        )


def utc_day(now: datetime | None = None) -> date:
    return as_utc(now or utcnow()).date()


def next_reset(day: date) -> datetime:
    """The moment the cap of `day` resets: the next 00:00 UTC."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=UTC)


def resets_in(resets_at: datetime, now: datetime | None = None) -> str:
    """ "resets at 00:00 UTC, in 3 h 12 min"."""
    left = max(int((resets_at - as_utc(now or utcnow())).total_seconds()), 0)
    hours, minutes = divmod((left + 59) // 60, 60)
    span = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"resets at 00:00 UTC, in {span}"


def _allowed(plan: Plan, cap: Cap) -> int | None:
    value = getattr(plan, CAPS[cap].plan_field)
    return None if value is None or value < 0 else int(value)


def _used(*, session: Session, org_id: int, cap: Cap, day: date) -> int:
    count = session.execute(
        select(DailyUsageCounter.count).where(
            DailyUsageCounter.org_id == org_id,
            DailyUsageCounter.user_id == _ORG_WIDE,
            DailyUsageCounter.counter == cap.value,
            DailyUsageCounter.day == day,
        )
    ).scalar_one_or_none()
    return int(count or 0)


def cap_status(
    *, session: Session, org_id: int, cap: Cap, now: datetime | None = None
) -> CapStatus:
    """The cap's figures for the organization's current UTC day."""
    day = utc_day(now)
    plan = org_plan(session=session, org_id=org_id)
    spec = CAPS[cap]
    return CapStatus(
        cap=cap,
        label=spec.label,
        unit=spec.unit,
        used=_used(session=session, org_id=org_id, cap=cap, day=day),
        allowed=_allowed(plan, cap),
        plan_key=plan.key,
        plan_name=plan.name,
        day=day,
        resets_at=next_reset(day),
    )


def _insert_ignoring_conflict(session: Session, table, values: dict, conflict_columns: list[str]):
    """INSERT ... ON CONFLICT DO NOTHING on PostgreSQL and SQLite; returns the inserted id."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = (
        module.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict_columns)
        .returning(table.c.id)
    )
    return session.execute(statement).scalar_one_or_none()


def _refused(status: CapStatus, now: datetime | None) -> DailyCapReached:
    return DailyCapReached(
        f"Daily limit reached: {status.used} of {status.allowed} {status.label} used today on "
        f"{status.plan_name}. It {resets_in(status.resets_at, now)}. "
        "Upgrade in Billing for a higher daily allowance.",
        cap=status.cap.value,
        used=status.used,
        allowed=status.allowed or 0,
        plan=status.plan_key,
        resets_at=status.resets_at,
    )


def cap_take(
    *,
    session: Session,
    org_id: int,
    cap: Cap,
    idempotency_key: str,
    user_id: int | None = None,
    now: datetime | None = None,
) -> CapStatus:
    """Take one unit of today's cap for the organization, or refuse with `DailyCapReached`.

    A second call with the same key takes nothing more and answers with the current status.
    Unlimited plans still count (the figures feed the UI and analytics).

    Raises:
        DailyCapReached: the cap is used up for today (UTC).
    """
    day = utc_day(now)
    plan = org_plan(session=session, org_id=org_id)
    allowed = _allowed(plan, cap)
    use_table = DailyCapUse.__table__
    use_id = _insert_ignoring_conflict(
        session,
        use_table,
        {
            "idempotency_key": idempotency_key,
            "org_id": org_id,
            "user_id": user_id,
            "counter": cap.value,
            "day": day,
            "created_at": as_utc(now or utcnow()),
        },
        ["idempotency_key"],
    )
    if use_id is None:  # already taken under this key: a retry counts once
        return cap_status(session=session, org_id=org_id, cap=cap, now=now)
    counter_table = DailyUsageCounter.__table__
    _insert_ignoring_conflict(
        session,
        counter_table,
        {"org_id": org_id, "user_id": _ORG_WIDE, "counter": cap.value, "day": day, "count": 0},
        ["org_id", "user_id", "counter", "day"],
    )
    where = and_(
        counter_table.c.org_id == org_id,
        counter_table.c.user_id == _ORG_WIDE,
        counter_table.c.counter == cap.value,
        counter_table.c.day == day,
    )
    if allowed is not None:
        where = and_(where, counter_table.c.count < allowed)
    new_count = session.execute(
        update(counter_table)
        .where(where)
        .values(count=counter_table.c.count + 1)
        .returning(counter_table.c.count)
    ).scalar_one_or_none()
    if new_count is None:
        session.execute(delete(use_table).where(use_table.c.id == use_id))
        raise _refused(cap_status(session=session, org_id=org_id, cap=cap, now=now), now)
    spec = CAPS[cap]
    return CapStatus(
        cap=cap,
        label=spec.label,
        unit=spec.unit,
        used=int(new_count),
        allowed=allowed,
        plan_key=plan.key,
        plan_name=plan.name,
        day=day,
        resets_at=next_reset(day),
    )


def cap_release(*, session: Session, idempotency_key: str, now: datetime | None = None) -> bool:
    """Give back the unit taken under `idempotency_key`; True only the one time it is returned.

    The unit goes back to the day it was taken from (a failure after midnight does not credit
    the new day).
    """
    use_table = DailyCapUse.__table__
    released = session.execute(
        update(use_table)
        .where(use_table.c.idempotency_key == idempotency_key, use_table.c.released_at.is_(None))
        .values(released_at=as_utc(now or utcnow()))
        .returning(use_table.c.org_id, use_table.c.counter, use_table.c.day)
    ).first()
    if released is None:
        return False
    counter_table = DailyUsageCounter.__table__
    session.execute(
        update(counter_table)
        .where(
            counter_table.c.org_id == released.org_id,
            counter_table.c.user_id == _ORG_WIDE,
            counter_table.c.counter == released.counter,
            counter_table.c.day == released.day,
            counter_table.c.count > 0,
        )
        .values(count=counter_table.c.count - 1)
    )
    return True


def caps_used_between(
    *, session: Session, org_id: int, cap: Cap, first_day: date, last_day: date
) -> int:
    """Units of a cap used (net of give-backs) over a range of UTC days, for analytics."""
    total = session.execute(
        select(func.coalesce(func.sum(DailyUsageCounter.count), 0)).where(
            DailyUsageCounter.org_id == org_id,
            DailyUsageCounter.user_id == _ORG_WIDE,
            DailyUsageCounter.counter == cap.value,
            DailyUsageCounter.day >= first_day,
            DailyUsageCounter.day <= last_day,
        )
    ).scalar_one()
    return int(total)


def upgrade_path(slug: str) -> str:
    """Where a refused person can raise the cap."""
    return routes.org_billing(slug)


__all__ = [
    "CAPS",
    "Cap",
    "CapStatus",
    "DailyCapReached",
    "cap_release",
    "cap_status",
    "cap_take",
    "caps_used_between",
    "next_reset",
    "resets_in",
    "upgrade_path",
    "utc_day",
]
