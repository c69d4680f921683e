""" "Why is this empty?": checks computed for the view a person is looking at, each with a fix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from core import routes
from core.clock import as_utc, utcnow
from services.analytics.queries import (
    Period,
    Report,
    Scope,
    aggregate,
    last_usage_at,
    runs_started,
)
from services.analytics.reconciliation import PENDING, reconciliation_days
from services.analytics.rollup import last_rollup_at

ROLLUP_STALE_AFTER = timedelta(hours=1)  # the job runs every 15 minutes


@dataclass(frozen=True)
class CheckItem:
    key: str
    ok: bool
    label: str
    detail: str  # what was found and, when not ok, the fix


def _when(moment: datetime | None) -> str:
    return f"{as_utc(moment):%Y-%m-%d %H:%M} UTC" if moment else "never"


def empty_checklist(
    *,
    session: Session,
    org_id: int,
    org_slug: str,
    scope: Scope,
    scope_label: str,
    report: Report,
    now: datetime | None = None,
) -> list[CheckItem]:
    """Scope, period, last roll-up, pending provider data and runs in range, for this view.

    Call it only for a person allowed to see the report (it reads the same organization).
    """
    now = as_utc(now or utcnow())
    period: Period = report.period
    items: list[CheckItem] = []
    in_scope = report.totals.runs
    if scope.is_org:
        items.append(CheckItem("scope", True, "Scope", "The whole organization is selected."))
    else:
        whole = sum(
            m.runs
            for m in aggregate(
                session,
                org_id=org_id,
                scope=Scope(),
                first=period.first,
                last=period.last,
                dims=("source",),
            ).values()
        )
        items.append(
            CheckItem(
                "scope",
                in_scope > 0 or whole == 0,
                "Scope",
                f"{scope_label} has {in_scope:,} runs in this period"
                + (
                    f"; the whole organization has {whole:,}. Pick Whole organization to see them."
                    if in_scope == 0 and whole
                    else "."
                ),
            )
        )
    last_usage = last_usage_at(session=session, org_id=org_id)
    last_day = last_usage.date() if last_usage is not None else None
    # A longer or later period is the fix only when the organization's latest usage is
    # outside this one (inside it, the scope or the data checks below explain the gap).
    period_ok = in_scope > 0 or last_day is None or period.first <= last_day <= period.last
    if period_ok:
        period_detail = f"{period.label}: {in_scope:,} runs in this view."
    elif last_day > period.last:
        period_detail = (
            f"{period.label}: no runs. The organization's latest usage was on "
            f"{_when(last_usage)}, after this period: pick Last 30 days or a later custom period."
        )
    else:
        period_detail = (
            f"{period.label}: no runs. The organization's latest usage was on "
            f"{_when(last_usage)}: pick a longer period or a custom one that includes it."
        )
    items.append(CheckItem("period", period_ok, "Period", period_detail))
    rolled = last_rollup_at(session=session)
    fresh = rolled is not None and now - rolled <= ROLLUP_STALE_AFTER
    items.append(
        CheckItem(
            "rollup",
            fresh,
            "Last roll-up",
            f"The daily roll-up last ran {_when(rolled)}."
            + (
                ""
                if fresh
                else " Figures are read from raw usage until it runs; an operator can run the "
                f"analytics_rollup job from {routes.OPERATOR_JOBS}."
            ),
        )
    )
    pending = [
        row.day
        for row in reconciliation_days(
            session=session, org_id=org_id, first=period.first, last=period.last
        )
        if row.status == PENDING
    ]
    items.append(
        CheckItem(
            "provider",
            not pending,
            "Pending provider data",
            "No day of this period waits for provider figures."
            if not pending
            else f"{len(pending)} day(s) still wait for provider usage or for runs to finish "
            f"(latest {pending[-1]:%Y-%m-%d}); their totals may still change. Check back later.",
        )
    )
    started, active = runs_started(session=session, org_id=org_id, scope=scope, period=period)
    items.append(
        CheckItem(
            "runs",
            started > 0,
            "Runs in range",
            f"{started:,} runs were started in this period; {active:,} are queued or running now."
            + (
                ""
                if started
                else " The workspace was not running then: start a run in Creative Studio "
                f"({routes.org_home(org_slug)}) and it will appear here when it finishes."
            ),
        )
    )
    return items
