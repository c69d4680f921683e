"""Running a competitor report on the run engine, and recovering reports that did not finish.

The lifecycle mirrors a generation's (`services.generations`, `services.run_engine`):

* `report_start` commits the queued report with its credit hold and cap unit; the session's
  ``after_commit`` hook hands it to the run engine (`run_engine.report_submit`): inline worker
  threads, or the Dramatiq queue on Redis. A rolled-back start sends nothing.
* `report_task` claims the report with a conditional ``queued -> running`` under the row lock
  (a redelivered task finds it running and does nothing), writes its worker id and a lease,
  and renews the lease while it works.
* The sources are fetched outside any transaction, each stored as soon as it is read (the
  page shows "Fetched 2 of 4 sources"); a source that is refused or fails is stored with the
  reason and the report goes on with the others.
* The report is built (locally, or by a hosted model) and validated (`schema.report_validate`,
  which rejects an unknown source). Then, under the row lock, if the report is still
  ``running``: success settles the hold at the estimate (key `keys.settle_key`) and compares
  with the last report on the same competitor; failure releases the hold (`keys.release_key`)
  and gives the daily cap unit back (`keys.cap_key`). A report that was failed meanwhile (the
  sweep, lease recovery) keeps its failure and nothing is charged.
* `reports_recover` (run with the engine's `runs_recover` job) fails reports whose worker's
  lease passed (``worker_lost``) and sends queued reports that never started again;
  `reports_sweep_stuck` (run with the 15-minute sweep) fails reports with no result within 15
  minutes (``timed_out``). Both release and give the unit back with the same keys, one row
  per transaction, rows locked with ``SKIP LOCKED`` on PostgreSQL: exactly once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import db
from core.clock import utcnow
from core.settings import get_settings
from models import CompetitorReport, CompetitorSource, UsageEvent
from models.enums import GenerationStatus
from services import credits
from services import models_registry as registry
from services.audit import audit_record
from services.brand_kits import brand_kit_context, brand_kit_for
from services.caps import cap_release
from services.credits import HoldAlreadyClosed
from services.error_codes import Code
from services.errors import DomainError, NotFound
from services.intel import keys
from services.intel.builder import SourceDoc, Us, build_report
from services.intel.changes import report_changes
from services.intel.extract import extract_html, extract_plain
from services.intel.fetcher import FAILED, Fetcher, FetchResult
from services.intel.reports import push_status
from services.intel.schema import report_validate
from services.providers.base import ProviderError

log = logging.getLogger(__name__)

RUNNING = GenerationStatus.running.value
QUEUED = GenerationStatus.queued.value
STUCK_AFTER = timedelta(minutes=15)
WORKER_LOST_REASON = (
    "The worker writing this report stopped unexpectedly; your credits and today's report were "
    "given back. Request it again."
)
TIMED_OUT_REASON = (
    "No result within 15 minutes; your credits and today's report were given back. Request it "
    "again."
)
_PENDING_KEY = "intel_reports_pending"
_HOOKED_KEY = "intel_reports_hooked"


# --- enqueue ----------------------------------------------------------------------------------


def report_enqueue_after_commit(*, session: Session, report_id: int) -> None:
    """Send the report's task once `session` commits (never if it rolls back)."""
    session.info.setdefault(_PENDING_KEY, []).append(report_id)
    if session.info.get(_HOOKED_KEY):
        return
    session.info[_HOOKED_KEY] = True
    event.listen(session, "after_commit", _send_pending)
    event.listen(session, "after_rollback", _drop_pending)


def _send_pending(session: Session) -> None:
    from services import run_engine

    pending, session.info[_PENDING_KEY] = session.info.get(_PENDING_KEY, []), []
    for report_id in pending:
        try:
            run_engine.report_submit(report_id)
        except Exception:  # noqa: BLE001 - committed: `reports_recover` sends it again
            log.exception("report %s could not be sent; the recovery job will send it", report_id)


def _drop_pending(session: Session) -> None:
    session.info[_PENDING_KEY] = []


# --- claim and lease --------------------------------------------------------------------------


def _lock(
    session: Session, report_id: int, *, skip_locked: bool = False
) -> CompetitorReport | None:
    query = select(CompetitorReport).where(CompetitorReport.id == report_id)
    query = query.with_for_update(skip_locked=skip_locked) if db.is_postgres(session) else query
    return session.exec(query.execution_options(populate_existing=True)).first()


def report_mark_running(
    *, session: Session, report_id: int, worker_id: str | None = None, lease_seconds: float = 60
) -> bool:
    """Claim a queued report (commit). False if it was not queued (a second delivery)."""
    report = _lock(session, report_id)
    if report is None or report.status != QUEUED:
        session.rollback()
        return False
    report.started_at = utcnow()
    report.worker_id = (worker_id or "")[:120] or None
    report.lease_expires_at = report.started_at + timedelta(seconds=lease_seconds)
    report.stage = "Reading robots.txt and fetching sources"
    push_status(report, RUNNING)
    session.add(report)
    session.commit()
    return True


def report_task(report_id: int) -> str:
    """Claim and run one report; its final status, or ``"skipped"`` if not claimed."""
    from services.run_engine import LeaseRenewal, worker_id

    settings = get_settings()
    owner = worker_id()
    with db.new_session() as session:
        if not report_mark_running(
            session=session,
            report_id=report_id,
            worker_id=owner,
            lease_seconds=settings.run_lease_seconds,
        ):
            return "skipped"
    with LeaseRenewal(
        CompetitorReport, report_id, owner, settings.run_lease_seconds, label="report"
    ):
        return report_execute(report_id=report_id).status


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    report_id: int
    org_id: int
    project_id: int | None
    competitor: str
    focus: str
    urls: tuple[str, ...]
    pasted: str
    model_key: str


def _update_if_running(report_id: int, **values: Any) -> bool:
    with db.session_scope() as session:
        done = session.execute(
            update(CompetitorReport)
            .where(col(CompetitorReport.id) == report_id, col(CompetitorReport.status) == RUNNING)
            .values(**values)
        )
        return bool(done.rowcount)


def _store_source(
    plan: _Plan, position: int, key: str, result: FetchResult | None, pasted: str = ""
) -> SourceDoc | None:
    """Store one source row (its own transaction); the builder's view of it when usable."""
    now = utcnow()
    if result is None:  # pasted material
        extracted = extract_plain(pasted)
        row = CompetitorSource(
            report_id=plan.report_id,
            org_id=plan.org_id,
            position=position,
            source_key=key,
            kind="pasted",
            outcome="fetched",
            fetched_at=now,
            content_hash=hashlib.sha256(pasted.encode()).hexdigest(),
            bytes_read=len(pasted.encode()),
            title="Pasted material",
            excerpt=extracted.excerpt,
            text=extracted.text,
            blocks=[list(b) for b in extracted.blocks],
        )
        doc = SourceDoc(key=key, kind="pasted", url="", blocks=extracted.blocks)
    else:
        extracted = None
        if result.usable:
            if result.content_type == "text/plain":
                extracted = extract_plain(result.body.decode("utf-8", "replace"))
            else:
                extracted = extract_html(result.body)
            if not extracted.blocks and not extracted.text:
                result.outcome, result.message = FAILED, "The page had no readable text."
                extracted = None
        row = CompetitorSource(
            report_id=plan.report_id,
            org_id=plan.org_id,
            position=position,
            source_key=key,
            kind="url",
            url=result.url[:2000],
            final_url=result.final_url[:2000],
            outcome=result.outcome,
            http_status=result.http_status,
            fetched_at=now if result.http_status is not None else None,
            content_hash=result.content_hash,
            bytes_read=len(result.body),
            title=(extracted.title if extracted else "")[:300],
            excerpt=(extracted.excerpt if extracted else "")[:600],
            text=(extracted.text if extracted else "").replace("\x00", ""),
            blocks=[list(b) for b in extracted.blocks] if extracted else [],
            message=result.message[:500],
        )
        doc = (
            SourceDoc(
                key=key,
                kind="url",
                url=result.final_url or result.url,
                title=extracted.title,
                description=extracted.description,
                blocks=extracted.blocks,
                social=extracted.social,
            )
            if extracted is not None
            else None
        )
    with db.session_scope() as session:
        session.add(row)
    return doc


def report_execute(
    *,
    report_id: int,
    fetcher_factory: Callable[[], Fetcher] | None = None,
) -> CompetitorReport:
    """Fetch, build, validate and complete a `running` report (settle, or release and give
    the cap unit back). Owns its units of work; never holds a transaction while fetching."""
    with db.new_session() as session:
        report = session.get(CompetitorReport, report_id)
        if report is None:
            raise NotFound("This report does not exist.")
        if report.status != RUNNING:
            return report
        plan = _Plan(
            report_id=report.id,
            org_id=report.org_id,
            project_id=report.project_id,
            competitor=report.competitor,
            focus=report.focus,
            urls=tuple(report.urls or ()),
            pasted=report.pasted_material or "",
            model_key=report.model_key,
        )
        kit = brand_kit_for(session=session, org_id=plan.org_id, project_id=plan.project_id)
        us = Us(
            name=kit.name if kit else "",
            voice=list(kit.voice or []) if kit else [],
            facts=list(kit.product_facts or []) if kit else [],
            audience=kit.audience if kit else "",
        )
        us_context = brand_kit_context(kit)
        model = registry.model_get(session=session, key=plan.model_key) if plan.model_key else None
    docs: list[SourceDoc] = []
    problems: list[str] = []
    total = len(plan.urls) + (1 if plan.pasted else 0)
    try:
        with (fetcher_factory or Fetcher)() as fetcher:
            for index, url in enumerate(plan.urls):
                key = f"S{index + 1}"
                result = fetcher.fetch_page(url)
                doc = _store_source(plan, index, key, result)
                if doc is not None:
                    docs.append(doc)
                else:
                    problems.append(f"{key} {result.outcome}: {result.message}")
                if not _update_if_running(
                    plan.report_id, stage=f"Fetched {index + 1} of {total} sources"
                ):
                    return _reread(plan.report_id)
        if plan.pasted:
            key = f"S{len(plan.urls) + 1}"
            docs.append(_store_source(plan, len(plan.urls), key, None, plan.pasted))
        if not docs:
            return _fail(
                plan.report_id,
                Code.intel_sources_unavailable.value,
                "None of the sources could be read, so there is nothing to report on; your "
                "credits and today's report were given back. " + " ".join(problems)[:700],
            )
        _update_if_running(plan.report_id, stage="Writing the report from the sources")
        keys_known = {doc.key for doc in docs}
        if model is not None and model.provider != "local":
            from services.intel.hosted import hosted_report

            data: Any = hosted_report(
                model=model,
                competitor=plan.competitor,
                focus=plan.focus,
                docs=docs,
                us_context=us_context,
            )[0]
        else:
            data = build_report(competitor=plan.competitor, focus=plan.focus, docs=docs, us=us)
        validated = report_validate(data, keys_known)
    except ProviderError as error:
        return _fail(plan.report_id, error.code.value, error.message)
    except DomainError as error:
        return _fail(plan.report_id, error.code, error.message)
    except Exception as error:  # noqa: BLE001 - any bug fails the report and gives credits back
        log.exception("report %s failed", plan.report_id)
        return _fail(
            plan.report_id,
            Code.error.value,
            f"The report could not be written ({error.__class__.__name__}); your credits and "
            "today's report were given back. Try again.",
        )
    return _succeed(plan.report_id, validated.model_dump(mode="json"))


def _reread(report_id: int) -> CompetitorReport:
    with db.new_session() as session:
        return session.get(CompetitorReport, report_id)


def _usage(
    report: CompetitorReport, *, outcome: str, millicredits: int, units: int, at: datetime
) -> UsageEvent:
    return UsageEvent(
        org_id=report.org_id,
        project_id=report.project_id,
        user_id=report.user_id,
        source="intel",
        model_key=report.model_key or "local-text",
        modality="text",
        units=units,
        millicredits=millicredits,
        outcome=outcome,
        request_id=report.public_id,
        occurred_at=at,
    )


def _previous(session: Session, report: CompetitorReport) -> CompetitorReport | None:
    """The last succeeded report on the same competitor in the same project."""
    return session.exec(
        select(CompetitorReport)
        .where(
            CompetitorReport.org_id == report.org_id,
            CompetitorReport.competitor_key == report.competitor_key,
            CompetitorReport.project_id == report.project_id,
            CompetitorReport.status == GenerationStatus.succeeded.value,
            col(CompetitorReport.id) != report.id,
            col(CompetitorReport.created_at) <= report.created_at,
        )
        .order_by(col(CompetitorReport.created_at).desc(), col(CompetitorReport.id).desc())
    ).first()


def _succeed(report_id: int, data: dict) -> CompetitorReport:
    from services.intel.export import report_markdown

    with db.new_session() as session:
        report = _lock(session, report_id)
        if report is None or report.status != RUNNING:
            session.rollback()
            return _reread(report_id)
        now = utcnow()
        credits.credits_settle(
            session=session,
            actual_millicredits=report.held_millicredits,
            idempotency_key=keys.settle_key(report.id),
            hold_entry_id=report.hold_entry_id,
            memo=f"{report.public_id}: Competitor Intel report",
        )
        previous = _previous(session, report)
        if previous is not None and previous.report:
            report.changes = [c.as_dict() for c in report_changes(previous.report, data)]
            report.previous_report_id = previous.id
        report.report = data
        sources = session.exec(
            select(CompetitorSource)
            .where(CompetitorSource.report_id == report.id)
            .order_by(col(CompetitorSource.position))
        ).all()
        report.content = report_markdown(
            data,
            [(s.source_key, s.final_url or s.url or "pasted material", "") for s in sources],
            title=f"Competitor Intel: {report.competitor}",
            created=f"{now:%Y-%m-%d %H:%M} UTC",
        )
        report.charged_millicredits = report.held_millicredits
        report.finished_at = now
        report.lease_expires_at = None
        report.stage = "Done"
        push_status(report, GenerationStatus.succeeded.value)
        session.add(report)
        session.add(
            _usage(
                report, outcome="succeeded", millicredits=report.held_millicredits, units=0, at=now
            )
        )
        session.commit()
        session.refresh(report)
        return report


def _close(session: Session, report: CompetitorReport, *, code: str, reason: str) -> int:
    """Fail a locked queued/running report: release its hold and give its cap unit back."""
    released = 0
    if report.hold_entry_id is not None:
        try:
            entry = credits.credits_release(
                session=session,
                idempotency_key=keys.release_key(report.id),
                hold_entry_id=report.hold_entry_id,
                reason=f"{code}: {reason}"[:300],
            )
            released = abs(entry.amount_millicredits or 0)
        except (HoldAlreadyClosed, NotFound):
            pass
    cap_release(session=session, idempotency_key=keys.cap_key(report.id))
    now = utcnow()
    report.failure_code = code[:64]
    report.failure_reason = reason[:1000]
    report.finished_at = now
    report.lease_expires_at = None
    report.stage = "Failed"
    push_status(report, GenerationStatus.failed.value, code=code)
    session.add(report)
    session.add(
        _usage(
            report,
            outcome="timed_out" if code == Code.timed_out.value else "failed",
            millicredits=0,
            units=0,
            at=now,
        )
    )
    return released


def _fail(report_id: int, code: str, reason: str) -> CompetitorReport:
    with db.new_session() as session:
        report = _lock(session, report_id)
        if report is None or report.status != RUNNING:
            session.rollback()
            return _reread(report_id)
        _close(session, report, code=code, reason=reason)
        session.commit()
        session.refresh(report)
        return report


# --- recovery and the sweep -------------------------------------------------------------------


@dataclass
class ReportRecovery:
    lost: int = 0
    requeued: int = 0
    timed_out: int = 0
    released_millicredits: int = 0


@contextmanager
def _scope(engine: Engine | None) -> Iterator[Session]:
    """A unit of work on `engine` (the process engine by default), committed on success."""
    with Session(engine or db.get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _fail_each(
    ids: list[int],
    condition: Callable[[CompetitorReport], bool],
    code: str,
    reason: str,
    result: ReportRecovery,
    *,
    audit: bool,
    engine: Engine | None = None,
) -> int:
    failed = 0
    for report_id in ids:
        try:
            with _scope(engine) as session:
                report = _lock(session, report_id, skip_locked=True)
                if report is None or not condition(report):
                    continue
                result.released_millicredits += _close(session, report, code=code, reason=reason)
                if audit:
                    audit_record(
                        session=session,
                        action="competitor_report.timed_out",
                        actor_user_id=None,
                        org_id=report.org_id,
                        target_type="competitor_report",
                        target_id=report.public_id or str(report.id),
                    )
                failed += 1
        except Exception:  # noqa: BLE001 - one bad row blocks no other; retried next pass
            log.exception("report %s could not be failed (%s)", report_id, code)
    return failed


def reports_recover(*, now: datetime | None = None, batch: int = 100) -> ReportRecovery:
    """Fail reports whose worker's lease passed; send queued reports that never started."""
    from services import run_engine

    settings = get_settings()
    now = now or utcnow()
    result = ReportRecovery()
    with db.new_session() as session:
        lost = list(
            session.exec(
                select(CompetitorReport.id)
                .where(
                    CompetitorReport.status == RUNNING,
                    col(CompetitorReport.lease_expires_at).is_not(None),
                    col(CompetitorReport.lease_expires_at) < now,
                )
                .limit(batch)
            )
        )
    result.lost = _fail_each(
        lost,
        lambda r: (
            r.status == RUNNING
            and r.lease_expires_at is not None
            and _aware(r.lease_expires_at) < now
        ),
        Code.worker_lost.value,
        WORKER_LOST_REASON,
        result,
        audit=False,
    )
    cutoff = now - timedelta(seconds=settings.run_queued_requeue_seconds)
    resend: list[int] = []
    with db.session_scope() as session:
        query = (
            select(CompetitorReport)
            .where(
                CompetitorReport.status == QUEUED,
                func.coalesce(CompetitorReport.enqueued_at, CompetitorReport.created_at) < cutoff,
                col(CompetitorReport.created_at) > now - STUCK_AFTER,
            )
            .limit(batch)
        )
        if db.is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        for report in session.exec(query.execution_options(populate_existing=True)):
            report.enqueued_at = now
            session.add(report)
            resend.append(report.id)
    for report_id in resend:
        run_engine.report_submit(report_id)
    result.requeued = len(resend)
    return result


def _aware(moment: datetime) -> datetime:
    from core.clock import as_utc

    return as_utc(moment)


def _stuck(cutoff: datetime) -> Callable[[CompetitorReport], bool]:
    def check(report: CompetitorReport) -> bool:
        if report.status == RUNNING:
            return _aware(report.started_at or report.created_at) < cutoff
        return report.status == QUEUED and _aware(report.created_at) < cutoff

    return check


def reports_sweep_stuck(
    *, now: datetime | None = None, batch: int = 500, engine: Engine | None = None
) -> ReportRecovery:
    """Fail (``timed_out``) and give back every report with no result within 15 minutes."""
    now = now or utcnow()
    cutoff = now - STUCK_AFTER
    result = ReportRecovery()
    with _scope(engine) as session:
        ids = list(
            session.exec(
                select(CompetitorReport.id)
                .where(
                    col(CompetitorReport.status).in_((QUEUED, RUNNING)),
                    func.coalesce(CompetitorReport.started_at, CompetitorReport.created_at)
                    < cutoff,
                )
                .order_by(col(CompetitorReport.id))
                .limit(batch)
            )
        )
    result.timed_out = _fail_each(
        ids,
        _stuck(cutoff),
        Code.timed_out.value,
        TIMED_OUT_REASON,
        result,
        audit=True,
        engine=engine,
    )
    return result


__all__ = [
    "ReportRecovery",
    "report_enqueue_after_commit",
    "report_execute",
    "report_mark_running",
    "report_task",
    "reports_recover",
    "reports_sweep_stuck",
]
