"""/org/<slug>/analytics and /operator/analytics: usage by scope and period, reconciliation.

Every public handler re-derives who acts and asks the policy (`OrgPageState._act` with
`analytics_view`; operators through `operator_access`). What the browser sends (a period, a
scope, a day) is checked against the lists offered and the organization's own rows before it
is kept; figures come from `services.analytics`. State holds read models only: labels,
formatted figures and chart points, never table rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import reflex as rx

from core import db, routes
from core.clock import as_utc
from models import ReconciliationDay
from services import policy
from services.analytics import checklist, export, platform, queries, reconciliation
from services.analytics.rollup import last_rollup_at
from services.credits import format_credits
from services.errors import DomainError, ValidationFailed
from state.org_page import Acting, OrgPageState, bounded
from state.session import SessionState

Action = policy.Action

PERIOD_CHOICES = queries.PERIODS  # (value, label) for the page's pickers
SCOPE_CHOICES = queries.SCOPE_KINDS
PERIOD_KEYS = tuple(key for key, _ in queries.PERIODS)
SCOPE_KINDS = tuple(kind for kind, _ in queries.SCOPE_KINDS)
MODALITIES = ("text", "image", "video")
MAX_CHOICE_CHARS = 40
MAX_TABLE_ROWS = 25  # per breakdown table (the CSV has everything)
MAX_CHART_BARS = 10
MAX_DETAIL_ROWS = 50
STATUS_LABELS = {
    "reconciled": "Reconciled",
    "pending": "Pending",
    "mismatch": "Mismatch",
    "unchecked": "Not checked yet",
}


# --- read models -------------------------------------------------------------------------------


@dataclass
class Kpi:
    label: str
    value: str
    change: str  # "+12% vs previous 7 days", "No change", "New this period"
    tone: str  # "up" | "down" | "flat"


@dataclass
class Choice:
    value: str
    label: str


@dataclass
class GroupRow:
    label: str
    credits: str
    runs: str
    failures: str


@dataclass
class DayRow:
    day: str
    credits: str
    runs: str
    failures: str


@dataclass
class CheckRow:
    label: str
    ok: bool
    detail: str


@dataclass
class ReconChip:
    day: str  # ISO, the value sent back to open it
    label: str  # "Nov 20"
    status: str
    status_label: str


@dataclass
class ReconDetail:
    what: str  # generation id, invoice or "Day"
    request_id: str
    problem: str
    difference: str


@dataclass
class OrgRow:
    name: str
    href: str
    credits: str
    runs: str
    failures: str


# --- formatting --------------------------------------------------------------------------------


def credits_number(millicredits: int) -> float:
    return round(millicredits / 1000, 3)


def change_text(now: int, before: int, days: int) -> tuple[str, str]:
    """How a figure moved against the previous period of the same length."""
    span = f"previous {days} day{'s' if days != 1 else ''}"
    if now == before:
        return f"No change vs {span}", "flat"
    if before == 0:
        return f"Up from 0 in the {span}", "up"
    percent = round((now - before) * 100 / before)
    tone = "up" if now > before else "down"
    return f"{'+' if percent > 0 else ''}{percent}% vs {span}", tone


def kpis_for(report: queries.Report) -> list[Kpi]:
    totals, before, days = report.totals, report.previous, report.period.day_count
    figures = (
        ("Credits used", totals.millicredits, before.millicredits, True),
        ("Runs", totals.runs, before.runs, False),
        ("Failures", totals.failures, before.failures, False),
        ("Refunds", totals.refunds, before.refunds, False),
        ("Assistant messages", totals.assistant_messages, before.assistant_messages, False),
        ("API requests", totals.api_requests, before.api_requests, False),
    )
    kpis = []
    for label, now, previous, is_credits in figures:
        text, tone = change_text(now, previous, days)
        kpis.append(Kpi(label, format_credits(now) if is_credits else f"{now:,}", text, tone))
    return kpis


def group_rows(groups: list[queries.GroupUsage]) -> list[GroupRow]:
    return [
        GroupRow(g.label, format_credits(g.millicredits), f"{g.runs:,}", f"{g.failures:,}")
        for g in groups[:MAX_TABLE_ROWS]
    ]


def group_chart(groups: list[queries.GroupUsage]) -> list[dict[str, Any]]:
    return [
        {"name": g.label[:40], "credits": credits_number(g.millicredits)}
        for g in groups[:MAX_CHART_BARS]
    ]


def daily_chart(report: queries.Report) -> list[dict[str, Any]]:
    return [
        {
            "day": f"{day.day:%b %-d}",
            **{
                modality: credits_number(day.millicredits_by_modality.get(modality, 0))
                for modality in MODALITIES
            },
        }
        for day in report.daily
    ]


def in_scope(item: dict, scope: queries.Scope) -> bool:
    """A stored reconciliation item belongs to the scope on screen."""
    if scope.kind == "org":
        return True
    if scope.kind == "project":
        return item.get("project_id") == scope.project_id
    if scope.kind == "member":
        return item.get("user_id") == scope.user_id
    if scope.kind == "api_key":
        return item.get("api_key_id") == scope.api_key_id
    return item.get("source") == scope.source


def chip_status(row: ReconciliationDay, scope: queries.Scope) -> str:
    """The day's status as seen from the scope (payments belong to the whole organization)."""
    if any(in_scope(item, scope) for item in row.issues or []):
        return reconciliation.MISMATCH
    if row.status == reconciliation.MISMATCH and scope.is_org:
        return reconciliation.MISMATCH  # issues beyond the listed ones
    if row.status == reconciliation.PENDING and any(
        in_scope(item, scope) or not item.get("generation") for item in row.waiting or []
    ):
        return reconciliation.PENDING
    return reconciliation.RECONCILED


def _when(moment: datetime | None) -> str:
    return f"{as_utc(moment):%Y-%m-%d %H:%M} UTC" if moment else "never"


# --- the page ----------------------------------------------------------------------------------


class AnalyticsState(OrgPageState, rx.State):
    loaded: bool = False
    period: str = "30d"
    custom_from: str = ""
    custom_to: str = ""
    scope_kind: str = "org"
    scope_value: str = ""

    period_label: str = ""
    _period_first: str = ""  # ISO days of the period on screen (the custom form starts there)
    _period_last: str = ""
    scope_label: str = "Whole organization"
    scope_values: list[Choice] = []  # the choices of the selected scope kind
    kpis: list[Kpi] = []
    empty: bool = True
    daily_chart: list[dict[str, Any]] = []
    model_chart: list[dict[str, Any]] = []
    member_chart: list[dict[str, Any]] = []
    project_chart: list[dict[str, Any]] = []
    daily_rows: list[DayRow] = []
    model_rows: list[GroupRow] = []
    member_rows: list[GroupRow] = []
    project_rows: list[GroupRow] = []
    source_rows: list[GroupRow] = []
    checks: list[CheckRow] = []
    chips: list[ReconChip] = []
    open_day: str = ""
    open_day_status: str = ""
    open_day_summary: str = ""
    open_day_details: list[ReconDetail] = []
    last_rollup: str = ""
    operator_view: bool = False  # an operator reading a customer's analytics

    # --- the skeleton's hooks --------------------------------------------------------------

    def _view_action(self) -> policy.Action:
        return Action.analytics_view

    def _period(self, acting: Acting) -> queries.Period:
        return queries.period_resolve(
            session=acting.session,
            org_id=acting.org.id,
            key=self.period,
            custom_from=self.custom_from,
            custom_to=self.custom_to,
        )

    def _scope(self, acting: Acting) -> queries.Scope:
        return queries.scope_resolve(
            session=acting.session,
            org_id=acting.org.id,
            kind=self.scope_kind,
            value=self.scope_value,
        )

    def _refresh(self, acting: Acting) -> None:
        session, org = acting.session, acting.org
        try:
            period = self._period(acting)
            scope = self._scope(acting)
        except ValidationFailed:
            # A project or key removed since it was picked: back to the whole organization.
            self.period, self.custom_from, self.custom_to = "30d", "", ""
            self.scope_kind, self.scope_value = "org", ""
            period, scope = self._period(acting), queries.Scope()
        choices = queries.scope_choices(session=session, org_id=org.id)
        self.scope_values = [Choice(c.value, c.label) for c in choices if c.kind == self.scope_kind]
        self.scope_label = next(
            (c.label for c in self.scope_values if c.value == self.scope_value),
            "Whole organization",
        )
        report = queries.analytics_report(
            session=session, actor=acting.actor, org_id=org.id, scope=scope, period=period
        )
        self.period_label = period.label
        self._period_first, self._period_last = period.first.isoformat(), period.last.isoformat()
        self.kpis = kpis_for(report)
        self.empty = report.empty
        self.daily_chart = daily_chart(report)
        self.model_chart = group_chart(report.by_model)
        self.member_chart = group_chart(report.by_member)
        self.project_chart = group_chart(report.by_project)
        self.daily_rows = [
            DayRow(
                f"{d.day:%Y-%m-%d}",
                format_credits(d.millicredits),
                f"{d.runs:,}",
                f"{d.failures:,}",
            )
            for d in reversed(report.daily)
            if d.runs
        ]
        self.model_rows = group_rows(report.by_model)
        self.member_rows = group_rows(report.by_member)
        self.project_rows = group_rows(report.by_project)
        self.source_rows = group_rows(report.by_source)
        items = checklist.empty_checklist(
            session=session,
            org_id=org.id,
            org_slug=org.slug,
            scope=scope,
            scope_label=self.scope_label,
            report=report,
        )
        self.checks = [CheckRow(i.label, i.ok, i.detail) for i in items]
        stored = {
            row.day: row
            for row in reconciliation.reconciliation_days(
                session=session, org_id=org.id, first=period.first, last=period.last
            )
        }
        used_days = {d.day for d in report.daily if d.runs}
        chips = []
        for day in sorted(used_days | set(stored), reverse=True):
            row = stored.get(day)
            status = chip_status(row, scope) if row is not None else "unchecked"
            chips.append(ReconChip(day.isoformat(), f"{day:%b %-d}", status, STATUS_LABELS[status]))
        self.chips = chips
        if self.open_day:
            self._fill_day(acting, scope, stored)
        self.last_rollup = _when(last_rollup_at(session=session))
        self.operator_view = acting.actor.role is None and acting.actor.is_operator
        self.loaded = True

    def _fill_day(
        self, acting: Acting, scope: queries.Scope, stored: dict[date, ReconciliationDay]
    ) -> None:
        try:
            day = date.fromisoformat(self.open_day)
        except ValueError:
            day = None
        row = stored.get(day) if day is not None else None
        if row is None:
            self.open_day_status = "unchecked"
            self.open_day_summary = (
                f"{self.open_day} has not been checked yet: the reconciliation job runs every "
                "hour and covers the last three days."
            )
            self.open_day_details = []
            return
        issues = [item for item in row.issues or [] if in_scope(item, scope)]
        waiting = [
            item
            for item in row.waiting or []
            if in_scope(item, scope) or not item.get("generation")
        ]
        self.open_day_status = chip_status(row, scope)
        self.open_day_summary = (
            f"{row.day:%Y-%m-%d} (UTC): metered {format_credits(row.metered_millicredits)} "
            f"credits, ledger {format_credits(row.ledger_millicredits)} (difference "
            f"{format_credits(row.difference_millicredits)}); provider units "
            f"{row.provider_units:,} of {row.metered_units:,} metered; paid invoices "
            f"{row.invoice_credits:,} credits, ledger {row.ledger_paid_credits:,}. "
            f"Checked {_when(row.computed_at)}."
        )
        details = [
            ReconDetail(
                item.get("generation") or item.get("invoice") or "Payments",
                item.get("request_id", ""),
                item.get("problem", ""),
                format_credits(int(item.get("difference_millicredits", 0))),
            )
            for item in issues
        ] + [
            ReconDetail(
                item.get("generation") or "Day",
                item.get("request_id", ""),
                "Pending: " + item.get("reason", ""),
                "",
            )
            for item in waiting
        ]
        self.open_day_details = details[:MAX_DETAIL_ROWS]

    # --- events -----------------------------------------------------------------------------

    async def _read(self, work=None) -> Any:
        return await self._act(Action.analytics_view, work or (lambda _acting: None))

    @rx.event
    async def load(self):
        self.loaded = False
        self.open_day = ""
        opened = await self._open()
        return opened.elsewhere

    @rx.event
    async def set_period(self, value: str):
        value = bounded(value, MAX_CHOICE_CHARS)
        if value not in PERIOD_KEYS:
            self._clear_messages()
            self.error = "Pick one of the periods offered."
            return
        if value == "custom" and not (self.custom_from and self.custom_to):
            # Start from the days on screen; the person then edits From and To.
            self.custom_from, self.custom_to = self._period_first, self._period_last
        self.period = value
        await self._read()

    @rx.event
    async def apply_custom(self, form: dict):
        form = form if isinstance(form, dict) else {}
        first = bounded(form.get("custom_from", ""), MAX_CHOICE_CHARS)
        last = bounded(form.get("custom_to", ""), MAX_CHOICE_CHARS)

        def keep(acting: Acting) -> None:
            queries.period_resolve(
                session=acting.session,
                org_id=acting.org.id,
                key="custom",
                custom_from=first,
                custom_to=last,
            )  # refuses a malformed, reversed or over-long range, with how to fix it
            self.period, self.custom_from, self.custom_to = "custom", first, last

        await self._read(keep)

    @rx.event
    async def set_scope_kind(self, value: str):
        value = bounded(value, MAX_CHOICE_CHARS)
        if value not in SCOPE_KINDS:
            self._clear_messages()
            self.error = "Pick one of the scopes offered."
            return

        def keep(acting: Acting) -> None:
            choices = [
                c
                for c in queries.scope_choices(session=acting.session, org_id=acting.org.id)
                if c.kind == value
            ]
            if value != "org" and not choices:
                raise ValidationFailed(
                    "This organization has nothing of that kind yet (no projects, members or "
                    "API keys). Pick another scope.",
                    field="scope",
                )
            self.scope_kind = value
            self.scope_value = choices[0].value if value != "org" else ""

        await self._read(keep)

    @rx.event
    async def set_scope_value(self, value: str):
        value = bounded(value, MAX_CHOICE_CHARS)

        def keep(acting: Acting) -> None:
            queries.scope_resolve(
                session=acting.session, org_id=acting.org.id, kind=self.scope_kind, value=value
            )
            self.scope_value = value

        await self._read(keep)

    @rx.event
    async def open_reconciliation(self, day: str):
        day = bounded(day, MAX_CHOICE_CHARS)
        try:
            date.fromisoformat(day)
        except ValueError:
            self._clear_messages()
            self.error = "That day is not on this page. Pick one of the chips."
            return
        self.open_day = day
        await self._read()

    @rx.event
    def close_reconciliation(self):
        self.open_day = ""
        self.open_day_details = []

    @rx.event
    async def export_csv(self):
        notice = self.notice

        def build(acting: Acting) -> tuple[str, str]:
            data = export.analytics_csv(
                session=acting.session,
                actor=acting.actor,
                org_id=acting.org.id,
                scope=self._scope(acting),
                period=self._period(acting),
            )
            return acting.org.slug, data

        exported = await self._act(Action.analytics_view, build, refresh=False)
        if exported is None:
            return None
        self.notice = notice
        slug, data = exported
        name = f"{slug}-analytics-{self.period}-{self.scope_kind}.csv"
        return rx.download(data=data, filename=name, mime_type="text/csv")


# --- the operators' platform view --------------------------------------------------------------

PLATFORM_PERIODS = (("7d", "Last 7 days"), ("30d", "Last 30 days"))


class OperatorAnalyticsState(rx.State):
    allowed: bool = False
    loaded: bool = False
    denied_message: str = ""
    error: str = ""
    period: str = "30d"
    period_label: str = ""
    top_credits: list[OrgRow] = []
    top_runs: list[OrgRow] = []
    top_failures: list[OrgRow] = []
    revenue_chart: list[dict[str, Any]] = []
    revenue_total: str = ""
    revenue_note: str = ""

    @rx.event
    async def load(self):
        return await self._fill()

    @rx.event
    async def set_period(self, value: str):
        value = bounded(value, MAX_CHOICE_CHARS)
        if value not in dict(PLATFORM_PERIODS):
            self.error = "Pick one of the periods offered."
            return None
        self.period = value
        return await self._fill()

    async def _fill(self):
        session_state = await self.get_state(SessionState)
        self.error = ""
        with db.session_scope() as session:
            user = session_state._current_user(session)
            if user is None:
                return rx.redirect(routes.sign_in(routes.OPERATOR_ANALYTICS))
            actor = policy.actor_for(session=session, user=user, org_id=None)
            decision = policy.can(actor, Action.operator_access, policy.Target())
            self.allowed, self.denied_message = decision.allowed, decision.message
            if not self.allowed:
                self.top_credits, self.top_runs, self.top_failures = [], [], []
                self.revenue_chart, self.loaded = [], True
                return None
            try:
                period = queries.period_resolve(session=session, org_id=0, key=self.period)
                overview = platform.platform_overview(session=session, actor=actor, period=period)
            except DomainError as error:
                self.error = error.message
                return None

        def rows(items: list[platform.OrgUsage]) -> list[OrgRow]:
            return [
                OrgRow(
                    o.name,
                    routes.org_area(o.slug, "analytics"),
                    format_credits(o.millicredits),
                    f"{o.runs:,}",
                    f"{o.failures:,}",
                )
                for o in items
            ]

        self.period_label = overview.period.label
        self.top_credits = rows(overview.top_by_credits)
        self.top_runs = rows(overview.top_by_runs)
        self.top_failures = rows(overview.top_by_failures)
        self.revenue_chart = [
            {"day": f"{d.day:%b %-d}", "revenue": round(d.amount_cents / 100, 2)}
            for d in overview.revenue
        ]
        self.revenue_total = (
            f"{overview.total_revenue_cents / 100:,.2f} {overview.revenue_currency.upper()} "
            f"from paid invoices, {overview.period.label}"
        )
        self.revenue_note = (
            "Invoices in "
            + ", ".join(c.upper() for c in overview.other_currencies)
            + " are not included in this total."
            if overview.other_currencies
            else ""
        )
        self.loaded = True
        return None
