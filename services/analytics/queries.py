"""Analytics queries: a scope and a period of whole UTC days, answered from the roll-up.

For each day of the period the roll-up holds the events before the day's watermark
(`services.analytics.rollup`); only events from the watermark on (the last minute of today,
or days the job has not reached yet) are read from `usage_events`. Every figure is the sum
of both parts, so the page never scans raw events for days the roll-up covers.

Scopes: the whole organization, one project, one member, one API key or one source
(studio, assistant, intel, api). Other surfaces write their usage events with `source` set;
nothing here needs to know them beyond grouping by it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, tuple_, union_all
from sqlmodel import Session, col, select

from core import db
from core.clock import as_utc, utcnow
from models import (
    AIModel,
    AnalyticsRollup,
    AnalyticsRollupWatermark,
    ApiKey,
    Generation,
    Membership,
    Project,
    Subscription,
    UsageEvent,
    User,
)
from services import policy
from services.analytics.common import (
    FAILED_OUTCOMES,
    SOURCES,
    SUCCEEDED,
    as_date,
    day_bounds,
    day_of,
    days,
)
from services.error_codes import Code
from services.errors import ValidationFailed, error_with_code

PERIODS: tuple[tuple[str, str], ...] = (
    ("today", "Today"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("cycle", "Current billing cycle"),
    ("custom", "Custom"),
)
SCOPE_KINDS: tuple[tuple[str, str], ...] = (
    ("org", "Whole organization"),
    ("project", "Project"),
    ("member", "Member"),
    ("api_key", "API key"),
    ("source", "Source"),
)
SOURCE_LABELS = {
    "studio": "Creative Studio",
    "assistant": "Assistant",
    "intel": "Competitor Intel",
    "api": "API",
}
MAX_PERIOD_DAYS = 366


# --- period and scope -------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole UTC days, `first` to `last` included."""

    key: str
    first: date
    last: date

    @property
    def day_count(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def label(self) -> str:
        if self.first == self.last:
            return f"{self.first:%b %-d, %Y} (UTC)"
        return f"{self.first:%b %-d} – {self.last:%b %-d, %Y} (UTC)"

    def previous(self) -> Period:
        """The same number of days just before."""
        last = self.first - timedelta(days=1)
        return Period("previous", last - timedelta(days=self.day_count - 1), last)


def _invalid_period(message: str, field_name: str = "period") -> ValidationFailed:
    return error_with_code(
        Code.analytics_period_invalid, message, base=ValidationFailed, field=field_name
    )


def _parse_day(value: str, field_name: str) -> date:
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise _invalid_period(
            f"{value!r} is not a date. Use a date like 2026-01-31 (UTC).", field_name
        ) from None


def period_resolve(
    *,
    session: Session,
    org_id: int,
    key: str,
    custom_from: str = "",
    custom_to: str = "",
    now: datetime | None = None,
) -> Period:
    """The period a person picked, as UTC days.

    Raises:
        ValidationFailed (analytics_period_invalid): unknown key, a custom day that is not
            YYYY-MM-DD, From after To, or more than a year.
    """
    today = as_utc(now or utcnow()).date()
    if key == "today":
        return Period(key, today, today)
    if key == "7d":
        return Period(key, today - timedelta(days=6), today)
    if key == "30d":
        return Period(key, today - timedelta(days=29), today)
    if key == "cycle":
        subscription = session.exec(
            select(Subscription).where(Subscription.org_id == org_id)
        ).first()
        start = as_utc(subscription.current_period_start) if subscription else None
        first = (
            start.date() if start is not None and start.date() <= today else today.replace(day=1)
        )
        return Period(key, first, today)
    if key == "custom":
        first = _parse_day(custom_from, "custom_from")
        last = _parse_day(custom_to, "custom_to")
        if first > last:
            raise _invalid_period(
                "The From day is after the To day. Pick a From day on or before the To day.",
                "custom_from",
            )
        if (last - first).days + 1 > MAX_PERIOD_DAYS:
            raise _invalid_period(
                f"A period can be at most {MAX_PERIOD_DAYS} days. Pick a shorter one.",
                "custom_to",
            )
        return Period(key, first, last)
    raise _invalid_period("Pick one of the periods offered.")


@dataclass(frozen=True)
class Scope:
    """What the figures cover: kind ``org`` (value 0/""), or one project, member, key or source."""

    kind: str = "org"
    project_id: int = 0
    user_id: int = 0
    api_key_id: int = 0
    source: str = ""

    @property
    def is_org(self) -> bool:
        return self.kind == "org"


def scope_resolve(*, session: Session, org_id: int, kind: str, value: str) -> Scope:
    """A scope from the page's pickers, checked to belong to the organization.

    Anything that does not name a project, member or key of this organization is refused as
    not found (so ids of other organizations reveal nothing).
    """
    if kind == "org":
        return Scope()
    if kind == "source":
        if value not in SOURCES:
            raise ValidationFailed("Pick one of the sources offered.", field="scope")
        return Scope(kind, source=value)
    try:
        ident = int(str(value))
    except ValueError:
        ident = 0
    found = False
    if ident > 0:
        if kind == "project":
            found = (
                session.exec(
                    select(Project.id).where(Project.id == ident, Project.org_id == org_id)
                ).first()
                is not None
            )
        elif kind == "member":
            # Former members keep their usage; anyone with usage or a membership counts.
            found = (
                session.exec(
                    select(Membership.id).where(
                        Membership.user_id == ident, Membership.org_id == org_id
                    )
                ).first()
                is not None
                or session.exec(
                    select(UsageEvent.id).where(
                        UsageEvent.user_id == ident, UsageEvent.org_id == org_id
                    )
                ).first()
                is not None
            )
        elif kind == "api_key":
            found = (
                session.exec(
                    select(ApiKey.id).where(ApiKey.id == ident, ApiKey.org_id == org_id)
                ).first()
                is not None
            )
        else:
            raise ValidationFailed("Pick one of the scopes offered.", field="scope")
    if not found:
        raise ValidationFailed(
            "That project, member or API key is not part of this organization. "
            "Pick one from the list.",
            field="scope",
        )
    return Scope(
        kind,
        project_id=ident if kind == "project" else 0,
        user_id=ident if kind == "member" else 0,
        api_key_id=ident if kind == "api_key" else 0,
    )


# --- the two parts of every figure ------------------------------------------------------------


@dataclass
class Metrics:
    runs: int = 0
    failures: int = 0
    refunds: int = 0
    units: int = 0
    millicredits: int = 0

    def add(self, other: Metrics) -> None:
        self.runs += other.runs
        self.failures += other.failures
        self.refunds += other.refunds
        self.units += other.units
        self.millicredits += other.millicredits


def raw_ranges(session: Session, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The stretches of [first, last] the roll-up does not cover (merged when adjacent)."""
    marks = {
        row.day: as_utc(row.rolled_through)
        for row in session.exec(
            select(AnalyticsRollupWatermark).where(
                col(AnalyticsRollupWatermark.day) >= first,
                col(AnalyticsRollupWatermark.day) <= last,
            )
        )
    }
    ranges: list[tuple[datetime, datetime]] = []
    for day in days(first, last):
        start, end = day_bounds(day)
        start = max(start, marks.get(day, start))
        if start >= end:
            continue
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    return ranges


_ROLLUP_DIMS = {
    "day": AnalyticsRollup.day,
    "org_id": AnalyticsRollup.org_id,
    "source": AnalyticsRollup.source,
    "modality": AnalyticsRollup.modality,
    "model_key": AnalyticsRollup.model_key,
    "user_id": AnalyticsRollup.user_id,
    "project_id": AnalyticsRollup.project_id,
    "api_key_id": AnalyticsRollup.api_key_id,
}


def _raw_dims(session: Session) -> dict[str, Any]:
    return {
        "day": day_of(session, UsageEvent.occurred_at),
        "org_id": UsageEvent.org_id,
        "source": UsageEvent.source,
        "modality": UsageEvent.modality,
        "model_key": UsageEvent.model_key,
        "user_id": func.coalesce(UsageEvent.user_id, 0),
        "project_id": func.coalesce(UsageEvent.project_id, 0),
        "api_key_id": func.coalesce(Generation.api_key_id, 0),
    }


def _rollup_filters(org_id: int | None, scope: Scope) -> list[Any]:
    filters: list[Any] = [] if org_id is None else [AnalyticsRollup.org_id == org_id]
    if scope.kind == "project":
        filters.append(AnalyticsRollup.project_id == scope.project_id)
    elif scope.kind == "member":
        filters.append(AnalyticsRollup.user_id == scope.user_id)
    elif scope.kind == "api_key":
        filters.append(AnalyticsRollup.api_key_id == scope.api_key_id)
    elif scope.kind == "source":
        filters.append(AnalyticsRollup.source == scope.source)
    return filters


def _raw_filters(org_id: int | None, scope: Scope) -> list[Any]:
    filters: list[Any] = [] if org_id is None else [UsageEvent.org_id == org_id]
    if scope.kind == "project":
        filters.append(UsageEvent.project_id == scope.project_id)
    elif scope.kind == "member":
        filters.append(UsageEvent.user_id == scope.user_id)
    elif scope.kind == "api_key":
        filters.append(Generation.api_key_id == scope.api_key_id)
    elif scope.kind == "source":
        filters.append(UsageEvent.source == scope.source)
    return filters


def _raw_window(ranges: list[tuple[datetime, datetime]]) -> Any:
    return or_(
        *[
            and_(col(UsageEvent.occurred_at) >= start, col(UsageEvent.occurred_at) < end)
            for start, end in ranges
        ]
    )


def aggregate(
    session: Session,
    *,
    org_id: int | None,
    scope: Scope,
    first: date,
    last: date,
    dims: tuple[str, ...],
    ranges: list[tuple[datetime, datetime]] | None = None,
) -> dict[tuple, Metrics]:
    """Usage of [first, last] grouped by `dims`: roll-up rows plus the raw events it lacks.

    `org_id` None is every organization (the operators' platform view).
    """
    totals: dict[tuple, Metrics] = defaultdict(Metrics)
    rollup_rows = session.exec(
        select(
            *[_ROLLUP_DIMS[d] for d in dims],
            func.sum(AnalyticsRollup.runs),
            func.sum(AnalyticsRollup.failures),
            func.sum(AnalyticsRollup.refunds),
            func.sum(AnalyticsRollup.units),
            func.sum(AnalyticsRollup.millicredits),
        )
        .where(
            col(AnalyticsRollup.day) >= first,
            col(AnalyticsRollup.day) <= last,
            *_rollup_filters(org_id, scope),
        )
        .group_by(*[_ROLLUP_DIMS[d] for d in dims])
    ).all()
    if ranges is None:
        ranges = raw_ranges(session, first, last)
    raw_rows: list[Any] = []
    if ranges:
        raw = _raw_dims(session)
        raw_rows = session.exec(
            select(
                *[raw[d] for d in dims],
                func.count(),
                func.sum(case((col(UsageEvent.outcome).in_(FAILED_OUTCOMES), 1), else_=0)),
                func.sum(case((UsageEvent.outcome != SUCCEEDED, 1), else_=0)),
                func.sum(UsageEvent.units),
                func.sum(UsageEvent.millicredits),
            )
            .select_from(UsageEvent)
            .outerjoin(Generation, Generation.id == UsageEvent.generation_id)
            .where(_raw_window(ranges), *_raw_filters(org_id, scope))
            .group_by(*[raw[d] for d in dims])
        ).all()
    width = len(dims)
    for row in list(rollup_rows) + list(raw_rows):
        key = tuple(
            as_date(value) if dim == "day" else value
            for dim, value in zip(dims, row[:width], strict=True)
        )
        runs, failures, refunds, units, millicredits = (int(v or 0) for v in row[width:])
        totals[key].add(Metrics(runs, failures, refunds, units, millicredits))
    return dict(totals)


def _metrics(row: Any, start: int) -> Metrics:
    runs, failures, refunds, units, millicredits = (int(v or 0) for v in row[start:])
    return Metrics(runs, failures, refunds, units, millicredits)


def aggregate_sets(
    session: Session,
    *,
    org_id: int | None,
    scope: Scope,
    first: date,
    last: date,
    sets: tuple[tuple[str, ...], ...],
    previous_first: date | None = None,
) -> tuple[dict[tuple[str, ...], dict[tuple, Metrics]], dict[tuple, Metrics]]:
    """`aggregate` for several groupings at once, and the first grouping for an earlier stretch.

    Returns ({dims: {key: metrics}} for [first, last], {key: metrics} of ``sets[0]`` for
    [previous_first, first) — empty without `previous_first`).

    On PostgreSQL one statement answers everything: the roll-up rows and the raw events after
    the watermarks, ``UNION ALL``, grouped by ``GROUPING SETS`` with a flag for the earlier
    stretch. Elsewhere each grouping is a query of its own.
    """
    since = previous_first if previous_first is not None else first
    if not db.is_postgres(session):
        ranges = raw_ranges(session, first, last)
        current = {
            dims: aggregate(
                session,
                org_id=org_id,
                scope=scope,
                first=first,
                last=last,
                dims=dims,
                ranges=ranges,
            )
            for dims in sets
        }
        earlier = (
            aggregate(
                session,
                org_id=org_id,
                scope=scope,
                first=since,
                last=first - timedelta(days=1),
                dims=sets[0],
            )
            if since < first
            else {}
        )
        return current, earlier
    ranges = raw_ranges(session, since, last)
    columns = sorted({dim for dims in sets for dim in dims})
    first_start, _ = day_bounds(first)
    branches = [
        select(
            (col(AnalyticsRollup.day) >= first).label("cur"),
            *[_ROLLUP_DIMS[d].label(d) for d in columns],
            AnalyticsRollup.runs.label("runs"),
            AnalyticsRollup.failures.label("failures"),
            AnalyticsRollup.refunds.label("refunds"),
            AnalyticsRollup.units.label("units"),
            AnalyticsRollup.millicredits.label("millicredits"),
        ).where(
            col(AnalyticsRollup.day) >= since,
            col(AnalyticsRollup.day) <= last,
            *_rollup_filters(org_id, scope),
        )
    ]
    if ranges:
        raw = _raw_dims(session)
        branches.append(
            select(
                (col(UsageEvent.occurred_at) >= first_start).label("cur"),
                *[raw[d].label(d) for d in columns],
                literal(1).label("runs"),
                case((col(UsageEvent.outcome).in_(FAILED_OUTCOMES), 1), else_=0).label("failures"),
                case((UsageEvent.outcome != SUCCEEDED, 1), else_=0).label("refunds"),
                UsageEvent.units.label("units"),
                UsageEvent.millicredits.label("millicredits"),
            )
            .select_from(UsageEvent)
            .outerjoin(Generation, Generation.id == UsageEvent.generation_id)
            .where(_raw_window(ranges), *_raw_filters(org_id, scope))
        )
    rows = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery()
    group_cols = [rows.c[d] for d in columns]
    statement = select(
        rows.c.cur,
        *group_cols,
        func.grouping(*group_cols).label("grouping"),
        func.sum(rows.c.runs),
        func.sum(rows.c.failures),
        func.sum(rows.c.refunds),
        func.sum(rows.c.units),
        func.sum(rows.c.millicredits),
    ).group_by(
        func.grouping_sets(*[tuple_(rows.c.cur, *[rows.c[d] for d in dims]) for dims in sets])
    )
    width = len(columns)

    def mask(dims: tuple[str, ...]) -> int:
        # GROUPING(a, b, c) sets the bit of each column the set leaves out (a is the highest).
        return sum(1 << (width - 1 - i) for i, d in enumerate(columns) if d not in dims)

    by_mask = {mask(dims): dims for dims in sets}
    current: dict[tuple[str, ...], dict[tuple, Metrics]] = {
        dims: defaultdict(Metrics) for dims in sets
    }
    earlier: dict[tuple, Metrics] = defaultdict(Metrics)
    for row in session.exec(statement).all():
        dims = by_mask.get(int(row[width + 1]))
        if dims is None:
            continue
        values = dict(zip(columns, row[1 : width + 1], strict=True))
        key = tuple(as_date(values[d]) if d == "day" else values[d] for d in dims)
        metrics = _metrics(row, width + 2)
        if row[0]:
            current[dims][key].add(metrics)
        elif dims == sets[0]:
            earlier[key].add(metrics)
    return {dims: dict(found) for dims, found in current.items()}, dict(earlier)


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    millicredits: int = 0
    runs: int = 0
    failures: int = 0
    refunds: int = 0
    assistant_messages: int = 0
    api_requests: int = 0


def _totals(by_source: dict[str, Metrics]) -> Totals:
    total = Metrics()
    for metrics in by_source.values():
        total.add(metrics)
    return Totals(
        millicredits=total.millicredits,
        runs=total.runs,
        failures=total.failures,
        refunds=total.refunds,
        assistant_messages=by_source.get("assistant", Metrics()).runs,
        api_requests=by_source.get("api", Metrics()).runs,
    )


@dataclass(frozen=True)
class DayUsage:
    day: date
    millicredits_by_modality: dict[str, int]
    runs: int
    failures: int
    millicredits: int


@dataclass(frozen=True)
class GroupUsage:
    key: str
    label: str
    millicredits: int
    runs: int
    failures: int


@dataclass(frozen=True)
class Report:
    period: Period
    scope: Scope
    totals: Totals
    previous: Totals
    daily: list[DayUsage]
    by_model: list[GroupUsage]
    by_member: list[GroupUsage]
    by_project: list[GroupUsage]
    by_source: list[GroupUsage]

    @property
    def empty(self) -> bool:
        return self.totals.runs == 0


def _groups(metrics: dict[Any, Metrics], labels: dict[Any, str], fallback: str) -> list[GroupUsage]:
    rows = [
        GroupUsage(
            key=str(key),
            label=labels.get(key) or fallback.format(key=key),
            millicredits=m.millicredits,
            runs=m.runs,
            failures=m.failures,
        )
        for key, m in metrics.items()
    ]
    return sorted(rows, key=lambda row: (-row.millicredits, -row.runs, row.label))


def _collapse(grouped: dict[tuple, Metrics], index: int) -> dict[Any, Metrics]:
    out: dict[Any, Metrics] = defaultdict(Metrics)
    for key, metrics in grouped.items():
        out[key[index]].add(metrics)
    return dict(out)


def member_labels(*, session: Session, user_ids: Any) -> dict[int, str]:
    """How a member is named in figures and exports: the name, else the address (one query)."""
    ids = [user_id for user_id in user_ids if user_id]
    if not ids:
        return {}
    return {
        user_id: name or email
        for user_id, name, email in session.exec(
            select(User.id, User.name, User.email).where(col(User.id).in_(ids))
        ).all()
    }


def analytics_report(
    *, session: Session, actor: policy.Actor, org_id: int, scope: Scope, period: Period
) -> Report:
    """Everything the Analytics page shows for a scope and period, with the previous period.

    Raises:
        PermissionDenied / NotFound: the actor may not read this organization's analytics.
    """
    policy.require(
        actor, policy.Action.analytics_view, policy.target_for(session=session, org_id=org_id)
    )
    daily_dims = ("day", "modality", "source")
    previous = period.previous()
    grouped, earlier = aggregate_sets(
        session,
        org_id=org_id,
        scope=scope,
        first=period.first,
        last=period.last,
        sets=(daily_dims, ("model_key",), ("user_id",), ("project_id",)),
        previous_first=previous.first,
    )
    daily_grouped = grouped[daily_dims]
    by_source = _collapse(daily_grouped, 2)
    previous_by_source = _collapse(earlier, 2)
    per_day: dict[date, dict[str, Any]] = {}
    for (day, modality, _source), metrics in daily_grouped.items():
        entry = per_day.setdefault(day, {"mod": defaultdict(int), "m": Metrics()})
        entry["mod"][modality] += metrics.millicredits
        entry["m"].add(metrics)
    daily = [
        DayUsage(
            day=day,
            millicredits_by_modality=dict(per_day[day]["mod"]) if day in per_day else {},
            runs=per_day[day]["m"].runs if day in per_day else 0,
            failures=per_day[day]["m"].failures if day in per_day else 0,
            millicredits=per_day[day]["m"].millicredits if day in per_day else 0,
        )
        for day in days(period.first, period.last)
    ]
    by_model = _collapse(grouped[("model_key",)], 0)
    by_member = _collapse(grouped[("user_id",)], 0)
    by_project = _collapse(grouped[("project_id",)], 0)
    model_names = (
        dict(
            session.exec(
                select(AIModel.key, AIModel.display_name).where(
                    col(AIModel.key).in_(list(by_model))
                )
            ).all()
        )
        if by_model
        else {}
    )
    member_ids = [key for key in by_member if key]
    member_names = member_labels(session=session, user_ids=member_ids)
    project_ids = [key for key in by_project if key]
    project_names = (
        dict(
            session.exec(
                select(Project.id, Project.name).where(
                    col(Project.id).in_(project_ids), Project.org_id == org_id
                )
            ).all()
        )
        if project_ids
        else {}
    )
    project_names[0] = "No project"
    member_names[0] = "No member (API key or system)"
    return Report(
        period=period,
        scope=scope,
        totals=_totals(by_source),
        previous=_totals(previous_by_source),
        daily=daily,
        by_model=_groups(by_model, model_names, "{key}"),
        by_member=_groups(by_member, member_names, "Former member #{key}"),
        by_project=_groups(by_project, project_names, "Deleted project #{key}"),
        by_source=_groups(by_source, SOURCE_LABELS, "{key}"),
    )


# --- what the pickers offer -------------------------------------------------------------------


@dataclass(frozen=True)
class ScopeChoice:
    kind: str
    value: str
    label: str


def scope_choices(*, session: Session, org_id: int) -> list[ScopeChoice]:
    """Projects, members (current, and former ones with usage), API keys and sources."""
    choices = [
        ScopeChoice("project", str(project_id), name)
        for project_id, name in session.exec(
            select(Project.id, Project.name).where(Project.org_id == org_id).order_by(Project.name)
        ).all()
    ]
    member_rows = session.exec(
        select(User.id, User.name, User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id)
        .order_by(User.name, User.email)
    ).all()
    choices += [ScopeChoice("member", str(uid), name or email) for uid, name, email in member_rows]
    choices += [
        ScopeChoice("api_key", str(key_id), f"{name} ({prefix}…)")
        for key_id, name, prefix in session.exec(
            select(ApiKey.id, ApiKey.name, ApiKey.prefix)
            .where(ApiKey.org_id == org_id)
            .order_by(ApiKey.name)
        ).all()
    ]
    choices += [ScopeChoice("source", source, SOURCE_LABELS[source]) for source in SOURCES]
    return choices


def runs_started(*, session: Session, org_id: int, scope: Scope, period: Period) -> tuple[int, int]:
    """(runs started in the period, runs queued or running now) in the scope (generations)."""
    start, _ = day_bounds(period.first)
    _, end = day_bounds(period.last)
    filters = [Generation.org_id == org_id]
    if scope.kind == "project":
        filters.append(Generation.project_id == scope.project_id)
    elif scope.kind == "member":
        filters.append(Generation.user_id == scope.user_id)
    elif scope.kind == "api_key":
        filters.append(Generation.api_key_id == scope.api_key_id)
    elif scope.kind == "source":
        if scope.source == "api":
            filters.append(col(Generation.api_key_id).is_not(None))
        elif scope.source == "studio":
            filters.append(col(Generation.api_key_id).is_(None))
    started = session.exec(
        select(func.count())
        .select_from(Generation)
        .where(*filters, col(Generation.created_at) >= start, col(Generation.created_at) < end)
    ).one()
    active = session.exec(
        select(func.count())
        .select_from(Generation)
        .where(*filters, col(Generation.status).in_(("queued", "running")))
    ).one()
    return int(started), int(active)


def last_usage_at(*, session: Session, org_id: int) -> datetime | None:
    return as_utc(
        session.exec(
            select(func.max(UsageEvent.occurred_at)).where(UsageEvent.org_id == org_id)
        ).one()
    )
