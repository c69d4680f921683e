"""/org/<slug>/intel: request a Competitor Intel report, follow it, read it, export it.

Every public handler goes through the org-page skeleton (`OrgPageState._act`). The page holds
read models only: report public ids ("rep_..."), never database ids; claims, prices and
fetched text are plain strings rendered as text (never as HTML or Markdown).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

import reflex as rx

from core import routes
from core.clock import as_utc
from services import credits, policy
from services import orgs as org_service
from services.intel import reports as report_service
from services.intel.schema import FOCUS_LABELS, FOCUSES, SECTIONS, SWOT_PARTS
from state.org_page import Acting, OrgPageState, bounded, browser_id

Action = policy.Action

FOCUS_OPTIONS: list[list[str]] = [[f, FOCUS_LABELS[f]] for f in FOCUSES]
FOLLOW_SECONDS = 1.0
_MAX_CHAIN = 1_000_000
_FOLLOW_ALIVE_SECONDS = 10.0
MAX_COMPETITOR_INPUT = report_service.MAX_COMPETITOR_CHARS + 1
MAX_URLS_INPUT = (report_service.MAX_URL_CHARS + 2) * (report_service.MAX_URLS + 1)
MAX_PASTED_INPUT = report_service.MAX_PASTED_CHARS + 1
_ACTIVE = report_service.ACTIVE_STATUSES


# --- read models -----------------------------------------------------------------------------


@dataclass
class Choice:
    value: str
    label: str


@dataclass
class BlockerView:
    code: str
    message: str
    link_label: str
    link_href: str


@dataclass
class ReportRow:
    public_id: str
    competitor: str
    status: str
    stage: str
    project: str
    created: str
    changes: str  # "2 changes since the last report", "No changes", ""
    failure_reason: str
    group_first: bool = False  # in History: the first (newest) report on its competitor


@dataclass
class Cite:
    key: str
    href: str


@dataclass
class ClaimRow:
    section: str
    first: bool  # the first claim of its section: the section's heading goes above it
    text: str
    cites: list[Cite]


@dataclass
class TierRow:
    name: str
    price: str
    features: str
    cites: list[Cite]


@dataclass
class ActionRow:
    text: str
    prompt: str
    href: str
    cites: list[Cite]


@dataclass
class SourceRow:
    key: str
    anchor: str
    where: str
    href: str
    outcome: str
    detail: str  # "HTTP 200 · fetched 2026-11-26 06:10 UTC · sha256 1a2b3c…"
    excerpt: str
    message: str


@dataclass
class ChangeRow:
    kind: str
    field: str
    text: str


def _when(moment) -> str:
    return f"{as_utc(moment):%Y-%m-%d %H:%M} UTC" if moment is not None else ""


def _cites(keys: list[str], hrefs: dict[str, str]) -> list[Cite]:
    return [Cite(key=key, href=hrefs.get(key, "")) for key in keys]


def _changes_label(count: int | None) -> str:
    if count is None:
        return ""
    if count == 0:
        return "No changes since the last report"
    return f"{count} change{'s' if count != 1 else ''} since the last report"


# --- state -----------------------------------------------------------------------------------


class IntelState(OrgPageState, rx.State):
    projects: list[Choice] = []
    project_id: str = ""
    focus: str = "positioning"
    can_run: bool = False
    estimate_line: str = ""
    cap_line: str = ""
    blockers: list[BlockerView] = []
    request_token: str = ""  # one submit of the request form: a double click starts one report
    org_address: str = ""

    reports: list[ReportRow] = []  # newest first
    history: list[ReportRow] = []  # the same, grouped per competitor (newest group first)
    selected: str = ""
    d_competitor: str = ""
    d_status: str = ""
    d_stage: str = ""
    d_meta: str = ""  # "Pricing focus · Launch 0 · compared with Acme voice (project kit)"
    d_failure: str = ""
    d_claims: list[ClaimRow] = []
    d_tiers: list[TierRow] = []
    d_actions: list[ActionRow] = []
    d_sources: list[SourceRow] = []
    d_changes: list[ChangeRow] = []
    d_changes_intro: str = ""
    d_headline: str = ""

    _follow_chain: int = 0
    _followed_at: float = 0.0

    @rx.var
    def billing_href(self) -> str:
        return routes.org_billing(self.org_address) if self.org_address else ""

    def _has_active(self) -> bool:
        return any(row.status in _ACTIVE for row in self.reports)

    # --- the skeleton's hooks --------------------------------------------------------------

    def _view_action(self) -> policy.Action:
        return Action.org_view

    def _project(self) -> int | None:
        return int(self.project_id) if self.project_id.isdigit() else None

    def _refresh(self, acting: Acting) -> None:
        session, user, org = acting.session, acting.user, acting.org
        self.org_address = org.slug
        visible = org_service.projects_visible(session=session, actor=acting.actor, org_id=org.id)
        self.projects = [Choice(value=str(p.id), label=p.name) for p in visible]
        if self.project_id not in {c.value for c in self.projects}:
            self.project_id = self.projects[0].value if self.projects else ""
        project_id = self._project()
        self.can_run = project_id is not None and acting.can(Action.tool_run, project_id=project_id)
        overview = report_service.intel_overview(
            session=session, user=user, org_id=org.id, project_id=project_id
        )
        self.estimate_line = (
            f"A report costs {credits.format_credits(overview.estimate.millicredits)} credits "
            f"({overview.estimate.model_name}); they are held when it starts and returned if it "
            "fails."
        )
        self.cap_line = overview.cap_line
        self.blockers = [
            BlockerView(b.code, b.message, b.link_label, b.link_href) for b in overview.blockers
        ]
        if not self.request_token:
            self.request_token = secrets.token_urlsafe(18)
        self._refresh_reports(acting)

    def _refresh_reports(self, acting: Acting) -> None:
        rows = report_service.reports_list(
            session=acting.session, user=acting.user, org_id=acting.org.id
        )
        self.reports = [
            ReportRow(
                public_id=r.public_id,
                competitor=r.competitor,
                status=r.status,
                stage=r.stage,
                project=r.project_name,
                created=_when(r.created_at),
                changes=_changes_label(r.changes_count),
                failure_reason=r.failure_reason,
            )
            for r in rows
        ]
        groups: dict[str, list[ReportRow]] = {}
        for row, summary in zip(self.reports, rows, strict=True):
            groups.setdefault(summary.competitor_key, []).append(row)
        self.history = [
            ReportRow(**{**row.__dict__, "group_first": index == 0})
            for group in groups.values()
            for index, row in enumerate(group)
        ]
        if self.selected and self.selected not in {r.public_id for r in self.reports}:
            self.selected = ""
        if not self.selected and self.reports:
            self.selected = self.reports[0].public_id
        self._refresh_detail(acting)

    def _clear_detail(self) -> None:
        self.d_competitor = self.d_status = self.d_stage = self.d_meta = self.d_failure = ""
        self.d_changes_intro = self.d_headline = ""
        self.d_claims, self.d_tiers, self.d_actions = [], [], []
        self.d_sources, self.d_changes = [], []

    def _refresh_detail(self, acting: Acting) -> None:
        if not self.selected:
            self._clear_detail()
            return
        session, org = acting.session, acting.org
        report = report_service.report_get(
            session=session, user=acting.user, org_id=org.id, public_id=self.selected
        )
        sources = report_service.report_sources(session=session, report=report)
        hrefs = {
            s.source_key: (s.final_url or s.url) if s.kind == "url" else f"#source-{s.source_key}"
            for s in sources
        }
        self.d_competitor = report.competitor
        self.d_status = report.status
        self.d_stage = report.stage
        project = next((c.label for c in self.projects if c.value == str(report.project_id)), "")
        self.d_meta = " · ".join(
            part
            for part in (
                f"{FOCUS_LABELS.get(report.focus, report.focus)} focus",
                project,
                f"us: {report.brand_kit_label}" if report.brand_kit_label else "",
                f"requested {_when(report.created_at)}",
            )
            if part
        )
        self.d_failure = report.failure_reason or ""
        self.d_sources = [
            SourceRow(
                key=s.source_key,
                anchor=f"source-{s.source_key}",
                where=(s.final_url or s.url) if s.kind == "url" else "Pasted material",
                href=(s.final_url or s.url) if s.kind == "url" else "",
                outcome=s.outcome,
                detail=" · ".join(
                    part
                    for part in (
                        f"HTTP {s.http_status}" if s.http_status else "",
                        f"fetched {_when(s.fetched_at)}" if s.fetched_at else "",
                        f"sha256 {s.content_hash[:12]}…" if s.content_hash else "",
                    )
                    if part
                ),
                excerpt=s.excerpt,
                message=s.message,
            )
            for s in sources
        ]
        data = report.report or {}
        claims: list[ClaimRow] = []
        for field, heading in SECTIONS:
            for index, claim in enumerate(data.get(field) or []):
                claims.append(
                    ClaimRow(heading, index == 0, claim["text"], _cites(claim["sources"], hrefs))
                )
        for part, heading in SWOT_PARTS:
            for index, claim in enumerate((data.get("swot") or {}).get(part) or []):
                claims.append(
                    ClaimRow(
                        f"SWOT: {heading}",
                        index == 0,
                        claim["text"],
                        _cites(claim["sources"], hrefs),
                    )
                )
        self.d_claims = claims
        headline = data.get("headline") or {}
        self.d_headline = headline.get("text", "")
        self.d_tiers = [
            TierRow(
                name=t["name"],
                price=" ".join(p for p in (t.get("price") or "", t.get("period") or "") if p),
                features=", ".join(t.get("features") or []),
                cites=_cites(t["sources"], hrefs),
            )
            for t in data.get("pricing_tiers") or []
        ]
        self.d_actions = [
            ActionRow(
                text=a["text"],
                prompt=a["prompt"],
                href=routes.org_studio_with_prompt(org.slug, a["prompt"], a.get("tool")),
                cites=_cites(a["sources"], hrefs),
            )
            for a in data.get("recommended_actions") or []
        ]
        previous = report_service.report_previous(session=session, report=report)
        self.d_changes = [
            ChangeRow(c.get("kind", ""), c.get("field", ""), c.get("text", ""))
            for c in report.changes or []
        ]
        if previous is None:
            self.d_changes_intro = ""
        elif self.d_changes:
            self.d_changes_intro = f"What changed since the report of {_when(previous.created_at)}"
        else:
            self.d_changes_intro = (
                f"Nothing changed in positioning, pricing, value propositions or channels since "
                f"the report of {_when(previous.created_at)}."
            )

    # --- events ----------------------------------------------------------------------------

    @rx.event
    async def load(self):
        opened = await self._open()
        if opened.acting is None:
            return opened.elsewhere
        self._follow_chain = self._follow_chain % _MAX_CHAIN + 1
        return IntelState.follow(self._follow_chain)

    def _choose_project(self, acting: Acting, value: Any) -> None:
        project_id = browser_id(value)
        policy.require(
            acting.actor,
            Action.project_view,
            policy.target_for(session=acting.session, org_id=acting.org.id, project_id=project_id),
        )
        self.project_id = str(project_id)

    @rx.event
    async def set_project(self, value: str):
        await self._act(self._view_action(), lambda a: self._choose_project(a, value))

    @rx.event
    def set_focus(self, value: str):
        value = bounded(value, 16)
        self.focus = value if value in FOCUSES else "positioning"

    def _start(self, acting: Acting, form: dict):
        request = report_service.report_request_clean(
            competitor=bounded(form.get("competitor"), MAX_COMPETITOR_INPUT),
            urls=bounded(form.get("urls"), MAX_URLS_INPUT),
            pasted=bounded(form.get("pasted"), MAX_PASTED_INPUT),
            focus=bounded(form.get("focus") or self.focus, 16),
            project_id=bounded(form.get("project") or self.project_id, 24),
        )
        return report_service.report_start(
            session=acting.session,
            user=acting.user,
            org_id=acting.org.id,
            request=request,
            request_key=bounded(form.get("request_token"), 64),
        )

    @rx.event
    async def request_report(self, form: dict):
        form = form if isinstance(form, dict) else {}
        project = bounded(form.get("project") or self.project_id, 24)
        project_id = int(project) if project.isdigit() and len(project) < 19 else None
        report = await self._act(
            Action.tool_run,
            lambda a: self._start(a, form),
            project_id=project_id,
            refresh=False,
        )
        if report is None:
            return None
        self.selected = report.public_id
        self.request_token = secrets.token_urlsafe(18)
        await self._show_current()
        self._follow_chain = self._follow_chain % _MAX_CHAIN + 1
        return [
            rx.toast.info(
                f"Report on {report.competitor} requested ({report.public_id}); it appears below "
                "as its sources are read."
            ),
            IntelState.follow(self._follow_chain),
        ]

    @rx.event
    async def select(self, public_id: str):
        wanted = bounded(public_id, 40)
        if wanted not in {r.public_id for r in self.reports}:
            self.error = report_service.REPORT_NOT_FOUND
            return
        self.selected = wanted
        await self._show_current()

    @rx.event
    async def download(self, fmt: str):
        fmt = "csv" if fmt == "csv" else "md"
        export = await self._act(
            self._view_action(),
            lambda a: report_service.report_export(
                session=a.session,
                user=a.user,
                org_id=a.org.id,
                public_id=self.selected,
                fmt=fmt,
            ),
            refresh=False,
        )
        if export is None:
            return None
        return rx.download(data=export.content, filename=export.filename)

    async def _show_current(self) -> None:
        from core import db
        from services.errors import DomainError

        with db.new_session() as session:
            try:
                acting = await self._acting(session, self._view_action())
                self._refresh(acting)
            except DomainError as error:
                self._show_error(session, error)

    @rx.event(background=True)
    async def follow(self, chain: int = 0):
        """Re-read the reports about every second while one is queued or running."""
        async with self:
            if not isinstance(chain, int) or isinstance(chain, bool) or chain != self._follow_chain:
                return None
            if not self._has_active():
                return None
            self._followed_at = time.time()
        await asyncio.sleep(FOLLOW_SECONDS)
        async with self:
            if chain != self._follow_chain:
                return None
            was = {r.public_id: r.status for r in self.reports}
            await self._show_current()
            toast = None
            for row in self.reports:
                if was.get(row.public_id) in _ACTIVE and row.status not in _ACTIVE:
                    toast = (
                        rx.toast.success(f"The report on {row.competitor} is ready.")
                        if row.status == "succeeded"
                        else rx.toast.error(
                            f"The report on {row.competitor} failed. {row.failure_reason}"
                        )
                    )
        step = IntelState.follow(chain)
        return [toast, step] if toast is not None else step
