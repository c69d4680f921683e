"""Competitor reports: the request, its blockers and estimate, the start, and what people read.

A report is a run like a generation. `report_start` (in the caller's transaction) checks the
request and every blocker, creates the ``queued`` report, takes one unit of the plan's daily
report cap (`services.caps`) and holds the report's credits (`services.credits`), both under
keys derived from the report id (`services.intel.keys`), and hands the report to the run
engine once the transaction commits. `services.intel.runner` runs it: fetches the sources,
builds and validates the report, then settles the hold (success) or releases it and gives
the cap unit back (failure), exactly once whichever path gets there first (the worker, the
lease recovery, the 15-minute sweep).

Access: owners, admins and editors request reports (``tool_run`` on the report's project);
everyone in the organization reads them, except that a project-scoped editor sees only the
reports of its projects; any other report is "not found" (404), never "forbidden".
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core import routes
from core.clock import as_utc, utcnow
from models import CompetitorReport, CompetitorSource, Organization, Project, Tool, User
from models.enums import GenerationStatus
from services import credits, policy, pricing
from services import generations as generation_service
from services import models_registry as registry
from services.brand_kits import brand_kit_for, brand_kit_label
from services.caps import Cap, cap_status, cap_take, resets_in
from services.error_codes import Code
from services.errors import InsufficientCredits, NotFound, ValidationFailed, error_with_code
from services.generations import Blocker, GenerationBlocked
from services.intel import keys
from services.intel.schema import FOCUS_LABELS, FOCUSES

TOOL_KEY = "competitor-report"
MAX_URLS = 5
MAX_URL_CHARS = 2000
MAX_COMPETITOR_CHARS = 120
MAX_PASTED_CHARS = 20_000
MAX_REQUEST_KEY_CHARS = 64
ACTIVE_STATUSES = (GenerationStatus.queued.value, GenerationStatus.running.value)
REPORT_NOT_FOUND = "This report does not exist or you do not have access to it."


# --- the request ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRequest:
    competitor: str
    urls: tuple[str, ...]
    pasted: str
    focus: str
    project_id: int


def competitor_key(name: str) -> str:
    """The competitor's name folded, so "Rival Inc" and "rival inc." share one history."""
    return re.sub(r"[^\w]+", " ", name.casefold()).strip()[:200]


def _visible(value: Any) -> str:
    text = "" if value is None else str(value)
    return "".join(ch for ch in text if ch in "\n\t" or ord(ch) >= 32)


def report_request_clean(
    *, competitor: Any, urls: Any, pasted: Any = "", focus: Any = "positioning", project_id: Any
) -> ReportRequest:
    """Validate what a person asked for.

    `urls` is text (one per line, or separated by spaces or commas) or a list. Addresses are
    checked for form here; whether they may be fetched (public address, robots.txt) is
    decided when they are fetched, and a refused one is shown on the report.

    Raises:
        ValidationFailed: names the field and what to change.
    """
    name = " ".join(_visible(competitor).split())
    if not name:
        raise ValidationFailed("Name the competitor (for example “Rival Inc”).", field="competitor")
    if len(name) > MAX_COMPETITOR_CHARS:
        raise ValidationFailed(
            f"The competitor's name is {len(name)} characters; the limit is "
            f"{MAX_COMPETITOR_CHARS}.",
            field="competitor",
        )
    raw = urls if isinstance(urls, (list, tuple)) else re.split(r"[\s,]+", _visible(urls))
    cleaned: list[str] = []
    for item in raw:
        url = _visible(item).strip()
        if not url:
            continue
        if len(url) > MAX_URL_CHARS:
            raise ValidationFailed(
                f"An address is longer than {MAX_URL_CHARS} characters.", field="urls"
            )
        if not re.match(r"^https?://[^\s/?#@]+(?:[/?#]\S*)?$", url, re.IGNORECASE):
            raise ValidationFailed(
                f"“{url[:80]}” is not a web address; start each one with https:// (one per line).",
                field="urls",
            )
        if url not in cleaned:
            cleaned.append(url)
    if not cleaned:
        raise ValidationFailed(
            "Give at least one address of the competitor's site (home, pricing, about...).",
            field="urls",
        )
    if len(cleaned) > MAX_URLS:
        raise ValidationFailed(
            f"{len(cleaned)} addresses were given; a report reads at most {MAX_URLS}. Keep the "
            "pages that say the most (home, pricing, about).",
            field="urls",
        )
    material = _visible(pasted).strip()
    if len(material) > MAX_PASTED_CHARS:
        raise ValidationFailed(
            f"The pasted material is {len(material):,} characters; the limit is "
            f"{MAX_PASTED_CHARS:,}. Paste the most telling ads or posts.",
            field="pasted",
        )
    focus = str(focus or "positioning")
    if focus not in FOCUSES:
        raise ValidationFailed(
            "Pick a focus: " + ", ".join(FOCUS_LABELS[f] for f in FOCUSES) + ".", field="focus"
        )
    if isinstance(project_id, bool) or not str(project_id or "").strip().isdigit():
        raise error_with_code(
            Code.project_required,
            "Choose the project the report is for: its brand kit is “us” in the comparison.",
            base=ValidationFailed,
            field="project",
        )
    return ReportRequest(
        competitor=name,
        urls=tuple(cleaned),
        pasted=material,
        focus=focus,
        project_id=int(str(project_id).strip()),
    )


# --- estimate and blockers --------------------------------------------------------------------


@dataclass(frozen=True)
class ReportEstimate:
    model_key: str
    model_name: str
    millicredits: int
    units: int


def report_estimate(*, session: Session) -> ReportEstimate:
    """The credits of one report: the catalog tool's standard run on its model."""
    tool = session.exec(select(Tool).where(Tool.key == TOOL_KEY)).first()
    if tool is None:
        raise NotFound("Competitor Intel is not set up on this server (the tool catalog lacks it).")
    model = registry.model_get(session=session, key=tool.default_model_key)
    return ReportEstimate(
        model_key=model.key,
        model_name=model.display_name,
        millicredits=pricing.tool_standard_credits(tool, model),
        units=pricing.run_units(model, tool.standard_params or {}),
    )


def _cap_blocker(session: Session, org: Organization) -> Blocker | None:
    status = cap_status(session=session, org_id=org.id, cap=Cap.competitor_reports)
    if not status.reached:
        return None
    return Blocker(
        Code.daily_cap_reached,
        f"Daily limit reached: {status.used} of {status.allowed} Competitor Intel reports used "
        f"today on {status.plan_name}. It {resets_in(status.resets_at)}. Upgrade in Billing "
        "for a higher daily allowance.",
        "See plans in Billing",
        routes.org_billing(org.slug),
        {"resets_at": status.resets_at.isoformat(), "allowed": status.allowed},
    )


def report_blockers(
    *, session: Session, user: User, org_id: int, project_id: int | None, include_cap: bool = True
) -> list[Blocker]:
    """Every reason `user` cannot request a report now ([] = may request), as in Studio.

    The Studio's checks (email not verified, role, project scope, inactive subscription, Free
    without a billing profile, the model, runs in progress) with the report's own estimate for
    credits and the spend cap, and, with `include_cap`, the plan's daily report cap.
    """
    estimate = report_estimate(session=session)
    org = session.get(Organization, org_id)
    blockers = [
        b
        for b in generation_service.generation_blockers(
            session=session,
            user=user,
            org_id=org_id,
            model_key=estimate.model_key,
            project_id=project_id,
        )
        if b.code not in (Code.insufficient_credits, Code.spend_cap_reached)
    ]
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    is_owner = actor.role is not None and actor.role.value == "owner"
    billing = routes.org_billing(org.slug)
    available = credits.credits_available(session=session, org_id=org_id, project_id=project_id)
    if estimate.millicredits > available:
        blockers.append(
            Blocker(
                Code.insufficient_credits,
                f"A report needs {credits.format_credits(estimate.millicredits)} credits; "
                f"{credits.format_credits(max(available, 0))} are available. "
                + (
                    "Top up in Billing." if is_owner else "Ask your organization's owner to top up."
                ),
                "Top up credits" if is_owner else "Open Billing",
                billing,
                {"needed_millicredits": estimate.millicredits, "available_millicredits": available},
            )
        )
    spend = generation_service._spend_cap_blocker(  # noqa: SLF001 - the Studio's one rule
        session, org, estimate.millicredits, is_owner, billing
    )
    if spend is not None:
        blockers.append(spend)
    if include_cap:
        cap = _cap_blocker(session, org)
        if cap is not None:
            blockers.append(cap)
    return blockers


# --- start ------------------------------------------------------------------------------------


def _new_public_id() -> str:
    return "rep_" + secrets.token_hex(8)


def push_status(report: CompetitorReport, status: str, **extra: Any) -> None:
    entry = {"status": status, "at": utcnow().isoformat()}
    entry.update({key: value for key, value in extra.items() if value})
    report.status = status
    report.status_history = [*(report.status_history or []), entry]


def report_start(
    *, session: Session, user: User, org_id: int, request: ReportRequest, request_key: str
) -> CompetitorReport:
    """Create the queued report, take a daily cap unit, hold its credits; send it on commit.

    A second call with the same `request_key` by the same person (a double click, a retried
    submit) returns the first report and takes nothing more. Flushes; the caller commits.

    Raises:
        NotFound: the project is outside the person's access.
        GenerationBlocked: any blocker (named, with what to do).
        DailyCapReached: today's reports are used up (names the reset time).
    """
    policy.require(
        policy.actor_for(session=session, user=user, org_id=org_id),
        policy.Action.tool_run,
        policy.target_for(session=session, org_id=org_id, project_id=request.project_id),
    )
    key = str(request_key or "").strip()[:MAX_REQUEST_KEY_CHARS]
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", key):
        raise ValidationFailed("This form expired. Reload the page and submit it again.")
    scoped_key = f"{user.id}:{key}"
    existing = session.exec(
        select(CompetitorReport).where(CompetitorReport.request_key == scoped_key)
    ).first()
    if existing is not None:
        if existing.org_id != org_id:
            raise ValidationFailed("This form expired. Reload the page and submit it again.")
        return existing
    generation_service._lock_run_starts(session, user_id=user.id, org_id=org_id)  # noqa: SLF001
    blockers = report_blockers(
        session=session, user=user, org_id=org_id, project_id=request.project_id, include_cap=False
    )
    if blockers:
        raise GenerationBlocked(blockers)
    estimate = report_estimate(session=session)
    kit = brand_kit_for(session=session, org_id=org_id, project_id=request.project_id)
    report = CompetitorReport(
        public_id=_new_public_id(),
        request_key=scoped_key,
        org_id=org_id,
        project_id=request.project_id,
        user_id=user.id,
        competitor=request.competitor,
        competitor_key=competitor_key(request.competitor),
        focus=request.focus,
        urls=list(request.urls),
        pasted_material=request.pasted,
        brand_kit_label=brand_kit_label(kit)[:200],
        model_key=estimate.model_key,
        estimate_millicredits=estimate.millicredits,
        held_millicredits=estimate.millicredits,
        stage="Waiting for a worker",
        created_at=utcnow(),
    )
    push_status(report, GenerationStatus.queued.value)
    session.add(report)
    session.flush()
    cap_take(
        session=session,
        org_id=org_id,
        cap=Cap.competitor_reports,
        idempotency_key=keys.cap_key(report.id),
        user_id=user.id,
    )
    try:
        hold = credits.credits_hold(
            session=session,
            org_id=org_id,
            amount_millicredits=estimate.millicredits,
            idempotency_key=keys.hold_key(report.id),
            project_id=request.project_id,
            actor_user_id=user.id,
            memo=f"{report.public_id}: Competitor Intel on {request.competitor}"[:300],
        )
    except InsufficientCredits as error:  # spent by someone else since the check
        org = session.get(Organization, org_id)
        raise GenerationBlocked(
            [Blocker(error.code, error.message, "Open Billing", routes.org_billing(org.slug))]
        ) from None
    report.hold_entry_id = hold.id
    session.add(report)
    from services.intel import runner  # the runner imports this module

    runner.report_enqueue_after_commit(session=session, report_id=report.id)
    return report


# --- reading ----------------------------------------------------------------------------------


def _actor(session: Session, user: User, org_id: int) -> policy.Actor:
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    policy.require(actor, policy.Action.org_view, policy.target_for(session=session, org_id=org_id))
    return actor


def _visible_condition(actor: policy.Actor):
    if actor.project_scoped and actor.role is not None and not actor.is_operator:
        return col(CompetitorReport.project_id).in_(sorted(actor.project_ids) or [-1])
    return True


@dataclass(frozen=True)
class ReportSummary:
    public_id: str
    competitor: str
    competitor_key: str
    status: str
    stage: str
    focus: str
    project_name: str
    created_at: datetime
    changes_count: int | None  # None: no earlier report to compare with
    failure_reason: str


def reports_list(
    *, session: Session, user: User, org_id: int, limit: int = 50
) -> list[ReportSummary]:
    """The organization's reports the person may see, newest first."""
    actor = _actor(session, user, org_id)
    rows = session.exec(
        select(CompetitorReport, Project.name)
        .join(Project, col(Project.id) == col(CompetitorReport.project_id), isouter=True)
        .where(CompetitorReport.org_id == org_id, _visible_condition(actor))
        .order_by(col(CompetitorReport.created_at).desc(), col(CompetitorReport.id).desc())
        .limit(limit)
    ).all()
    return [
        ReportSummary(
            public_id=report.public_id or "",
            competitor=report.competitor,
            competitor_key=report.competitor_key,
            status=report.status,
            stage=report.stage,
            focus=report.focus,
            project_name=project_name or "No project",
            created_at=as_utc(report.created_at),
            changes_count=None if report.changes is None else len(report.changes),
            failure_reason=report.failure_reason or "",
        )
        for report, project_name in rows
    ]


def report_get(*, session: Session, user: User, org_id: int, public_id: str) -> CompetitorReport:
    """One report the person may see.

    Raises:
        NotFound: no such report in this organization, or outside a scoped editor's projects.
    """
    actor = _actor(session, user, org_id)
    report = session.exec(
        select(CompetitorReport).where(
            CompetitorReport.public_id == str(public_id or "")[:40],
            CompetitorReport.org_id == org_id,
        )
    ).first()
    if report is None:
        raise NotFound(REPORT_NOT_FOUND)
    if report.project_id is None:
        if actor.project_scoped and not actor.is_operator:
            raise NotFound(REPORT_NOT_FOUND)
        return report
    try:
        policy.require(
            actor,
            policy.Action.project_view,
            policy.target_for(session=session, org_id=org_id, project_id=report.project_id),
        )
    except NotFound:
        raise NotFound(REPORT_NOT_FOUND) from None
    return report


def report_sources(*, session: Session, report: CompetitorReport) -> list[CompetitorSource]:
    return list(
        session.exec(
            select(CompetitorSource)
            .where(CompetitorSource.report_id == report.id)
            .order_by(col(CompetitorSource.position))
        )
    )


@dataclass(frozen=True)
class PreviousReport:
    public_id: str
    created_at: datetime


def report_previous(*, session: Session, report: CompetitorReport) -> PreviousReport | None:
    if report.previous_report_id is None:
        return None
    previous = session.get(CompetitorReport, report.previous_report_id)
    if previous is None or previous.public_id is None:
        return None
    return PreviousReport(previous.public_id, as_utc(previous.created_at))


@dataclass(frozen=True)
class ReportExport:
    filename: str
    content: str
    media_type: str


def report_export(
    *, session: Session, user: User, org_id: int, public_id: str, fmt: str
) -> ReportExport:
    """The report as Markdown (``md``) or CSV (``csv``), claims with their sources."""
    from services.intel.export import report_csv, report_markdown

    report = report_get(session=session, user=user, org_id=org_id, public_id=public_id)
    if report.status != GenerationStatus.succeeded.value or not report.report:
        raise error_with_code(
            Code.conflict,
            "Only a finished report can be exported; wait until it succeeds.",
            base=ValidationFailed,
        )
    sources = report_sources(session=session, report=report)
    urls = {s.source_key: (s.final_url or s.url or "pasted material") for s in sources}
    slug = re.sub(r"[^a-z0-9]+", "-", report.competitor_key).strip("-") or "competitor"
    stamp = f"{as_utc(report.created_at):%Y-%m-%d}"
    if fmt == "csv":
        return ReportExport(
            f"intel-{slug}-{stamp}.csv", report_csv(report.report, urls), "text/csv"
        )
    return ReportExport(
        f"intel-{slug}-{stamp}.md",
        report_markdown(
            report.report,
            [
                (
                    s.source_key,
                    urls[s.source_key],
                    f"{as_utc(s.fetched_at):%Y-%m-%d %H:%M} UTC" if s.fetched_at else "",
                )
                for s in sources
            ],
            title=f"Competitor Intel: {report.competitor}",
            created=f"{as_utc(report.created_at):%Y-%m-%d %H:%M} UTC",
        ),
        "text/markdown",
    )


@dataclass
class IntelOverview:
    """The lines shown above the request form before anything runs."""

    estimate: ReportEstimate
    cap_line: str
    blockers: list[Blocker] = field(default_factory=list)


def intel_overview(
    *, session: Session, user: User, org_id: int, project_id: int | None
) -> IntelOverview:
    estimate = report_estimate(session=session)
    status = cap_status(session=session, org_id=org_id, cap=Cap.competitor_reports)
    try:
        blockers = report_blockers(session=session, user=user, org_id=org_id, project_id=project_id)
    except NotFound as error:
        blockers = [Blocker(error.code, error.message)]
    return IntelOverview(estimate=estimate, cap_line=status.describe(), blockers=blockers)


__all__ = [
    "ACTIVE_STATUSES",
    "MAX_URLS",
    "TOOL_KEY",
    "IntelOverview",
    "PreviousReport",
    "ReportEstimate",
    "ReportExport",
    "ReportRequest",
    "ReportSummary",
    "competitor_key",
    "intel_overview",
    "push_status",
    "report_blockers",
    "report_estimate",
    "report_export",
    "report_get",
    "report_previous",
    "report_request_clean",
    "report_sources",
    "report_start",
    "reports_list",
]
