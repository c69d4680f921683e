"""Platform status: components derived from the product's own signals, plus incidents.

Signals (read at request time, nothing to keep in sync):
- a model swapped for its backup degrades its modality's components; a disabled model with no
  active model left in its modality is an outage of them;
- a job whose latest run failed, or that has not run for three of its intervals, degrades
  "Background jobs";
- a provider error rate over `PROVIDER_ERROR_RATE` in the last `SIGNAL_WINDOW` of finished
  runs degrades the Studio (and the API).
An open incident on a component makes it at least as bad as the incident's impact.

Automatic incidents: `status_incidents_sync` opens one incident per swapped or disabled model
(its unique `auto_key` names the model and when its status changed, so two processes open it
once) and resolves it when the model is active again. Operators open and update the others
(investigating -> identified -> monitoring -> resolved). History covers 90 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.clock import as_utc, utcnow
from models import AIModel, Generation, Incident, IncidentUpdate, JobRun, User
from models.enums import GenerationStatus, JobRunStatus, ModelStatus
from services import notifications, policy
from services.errors import NotFound, ValidationFailed

COMPONENTS: tuple[tuple[str, str], ...] = (
    ("studio", "Creative Studio"),
    ("assistant", "Assistant"),
    ("intel", "Competitor Intel"),
    ("api", "API"),
    ("billing", "Billing"),
    ("jobs", "Background jobs"),
)
COMPONENT_KEYS = tuple(key for key, _ in COMPONENTS)
COMPONENT_NAMES = dict(COMPONENTS)
# Which components a modality's models serve.
MODALITY_COMPONENTS = {
    "text": ("studio", "assistant", "intel", "api"),
    "image": ("studio", "api"),
    "video": ("studio", "api"),
}
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
IMPACTS = ("degraded", "outage")
LEVEL_ORDER = {"operational": 0, "degraded": 1, "outage": 2}
HISTORY_DAYS = 90
SIGNAL_WINDOW = timedelta(minutes=15)
PROVIDER_ERROR_RATE = 0.25
PROVIDER_ERROR_MIN_RUNS = 4
MAX_TITLE_CHARS = 200
MAX_UPDATE_CHARS = 2000


@dataclass
class ComponentStatus:
    key: str
    name: str
    level: str = "operational"  # operational | degraded | outage
    reasons: list[str] = field(default_factory=list)

    def worsen(self, level: str, reason: str) -> None:
        if LEVEL_ORDER[level] > LEVEL_ORDER[self.level]:
            self.level = level
        if reason and reason not in self.reasons:
            self.reasons.append(reason)


@dataclass(frozen=True)
class PlatformStatus:
    components: list[ComponentStatus]

    @property
    def level(self) -> str:
        return max((c.level for c in self.components), key=LEVEL_ORDER.__getitem__)

    @property
    def headline(self) -> str:
        return {
            "operational": "Platform status: Operational",
            "degraded": "Platform status: Degraded performance",
            "outage": "Platform status: Partial outage",
        }[self.level]


def _model_signals(session: Session, components: dict[str, ComponentStatus]) -> None:
    models = list(session.exec(select(AIModel)))
    for model in models:
        served = MODALITY_COMPONENTS.get(model.modality, ("studio",))
        if model.status == ModelStatus.swapped.value:
            for key in served:
                components[key].worsen(
                    "degraded",
                    f"{model.display_name} is answered by its backup model for now.",
                )
        elif model.status == ModelStatus.disabled.value:
            others = [
                m
                for m in models
                if m.modality == model.modality and m.status == ModelStatus.active.value
            ]
            level = "degraded" if others else "outage"
            for key in served:
                components[key].worsen(level, f"{model.display_name} is turned off for now.")


def _job_signals(session: Session, components: dict[str, ComponentStatus]) -> None:
    """A job whose last run failed, or that is late: its latest start is older than three of
    its usual intervals (the gap between its two latest starts; jobs/ owns the schedule)."""
    now = utcnow()
    since = now - timedelta(days=2)
    job_ids = set(session.exec(select(JobRun.job_id).where(col(JobRun.started_at) >= since)))
    for job_id in sorted(job_ids):
        runs = list(
            session.exec(
                select(JobRun)
                .where(JobRun.job_id == job_id)
                .order_by(col(JobRun.started_at).desc())
                .limit(2)
            )
        )
        latest = runs[0]
        if latest.status == JobRunStatus.failed.value:
            components["jobs"].worsen("degraded", f"The job {job_id} failed on its last run.")
            continue
        if len(runs) == 2:
            interval = as_utc(latest.started_at) - as_utc(runs[1].started_at)
            late_after = max(interval * 3, timedelta(minutes=5))
            if now - as_utc(latest.started_at) > late_after:
                components["jobs"].worsen("degraded", f"The job {job_id} is running late.")


def _provider_signals(session: Session, components: dict[str, ComponentStatus]) -> None:
    since = utcnow() - SIGNAL_WINDOW
    finished = (
        select(Generation.failure_code, func.count())
        .where(
            col(Generation.finished_at) >= since,
            col(Generation.status).in_(
                [GenerationStatus.succeeded.value, GenerationStatus.failed.value]
            ),
        )
        .group_by(Generation.failure_code)
    )
    counts = {code: count for code, count in session.exec(finished)}
    total = sum(counts.values())
    errors = counts.get("provider_error", 0)
    if total >= PROVIDER_ERROR_MIN_RUNS and errors / total > PROVIDER_ERROR_RATE:
        reason = (
            f"{errors} of the last {total} runs failed at the model provider "
            f"(past {int(SIGNAL_WINDOW.total_seconds() // 60)} minutes)."
        )
        components["studio"].worsen("degraded", reason)
        components["api"].worsen("degraded", reason)


def incidents_open(*, session: Session, org_id: int | None = None) -> list[Incident]:
    """Unresolved incidents, newest first; with `org_id`, those reaching that organization."""
    rows = session.exec(
        select(Incident)
        .where(col(Incident.resolved_at).is_(None))
        .order_by(col(Incident.created_at).desc())
    )
    return [r for r in rows if org_id is None or not r.org_ids or org_id in list(r.org_ids)]


def platform_status(*, session: Session) -> PlatformStatus:
    components = {key: ComponentStatus(key, name) for key, name in COMPONENTS}
    _model_signals(session, components)
    _job_signals(session, components)
    _provider_signals(session, components)
    for incident in incidents_open(session=session):
        for key in incident.components:
            if key in components:
                components[key].worsen(incident.impact, incident.title)
    return PlatformStatus([components[key] for key in COMPONENT_KEYS])


def incidents_history(*, session: Session, days: int = HISTORY_DAYS) -> list[Incident]:
    since = utcnow() - timedelta(days=days)
    return list(
        session.exec(
            select(Incident)
            .where(col(Incident.created_at) >= since)
            .order_by(col(Incident.created_at).desc())
        )
    )


def incident_updates(*, session: Session, incident_ids: list[int]) -> dict[int, list]:
    result: dict[int, list] = {i: [] for i in incident_ids}
    if not incident_ids:
        return result
    rows = session.exec(
        select(IncidentUpdate)
        .where(col(IncidentUpdate.incident_id).in_(incident_ids))
        .order_by(col(IncidentUpdate.created_at).desc(), col(IncidentUpdate.id).desc())
    )
    for row in rows:
        result[row.incident_id].append(row)
    return result


# --- incidents: automatic ---------------------------------------------------------------------


def _auto_key(model: AIModel) -> str:
    changed = as_utc(model.status_changed_at or model.updated_at)
    return f"model:{model.key}:{model.status}:{changed:%Y%m%dT%H%M%S}"[:120]


def status_incidents_sync(*, session: Session) -> int:
    """Open an incident per swapped/disabled model and resolve those whose model is back.
    Safe in two processes at once (unique auto_key). Flushes; returns incidents changed."""
    changed = 0
    models = {m.key: m for m in session.exec(select(AIModel))}
    wanted: dict[str, AIModel] = {
        _auto_key(m): m for m in models.values() if m.status != ModelStatus.active.value
    }
    open_auto = [i for i in incidents_open(session=session) if i.auto_key]
    now = utcnow()
    for incident in open_auto:
        if incident.auto_key in wanted:
            continue
        # Conditional: when two processes sync at once, one resolves it (one update, one mail).
        won = session.execute(
            update(Incident)
            .where(col(Incident.id) == incident.id, col(Incident.resolved_at).is_(None))
            .values(status="resolved", resolved_at=now, updated_at=now)
        ).rowcount
        if not won:
            continue
        session.refresh(incident)
        session.add(
            IncidentUpdate(
                incident_id=incident.id,
                status="resolved",
                body="The model is back in service.",
                created_at=now,
            )
        )
        session.flush()
        notifications.incident_notify(
            session=session,
            incident=incident,
            status="resolved",
            body="The model is back in service.",
        )
        changed += 1
    existing = set(
        session.exec(select(Incident.auto_key).where(col(Incident.auto_key).in_(list(wanted))))
    )
    for key, model in wanted.items():
        if key in existing:
            continue
        swapped = model.status == ModelStatus.swapped.value
        title = (
            f"{model.display_name} answered by its backup model"
            if swapped
            else f"{model.display_name} turned off"
        )
        body = model.status_reason or (
            "Runs on this model go to its backup while the provider recovers."
            if swapped
            else "The model is unavailable; pick another model."
        )
        try:
            with session.begin_nested():
                incident = Incident(
                    title=title[:MAX_TITLE_CHARS],
                    status="identified",
                    impact="degraded",
                    components=list(MODALITY_COMPONENTS.get(model.modality, ("studio",))),
                    auto_key=key,
                    created_at=now,
                    updated_at=now,
                )
                session.add(incident)
                session.flush()
                session.add(
                    IncidentUpdate(
                        incident_id=incident.id,
                        status="identified",
                        body=body[:2000],
                        created_at=now,
                    )
                )
                session.flush()
            changed += 1
        except IntegrityError:  # another process opened it
            continue
        notifications.incident_notify(
            session=session, incident=incident, status="identified", body=body[:2000]
        )
    session.flush()
    return changed


def status_incidents_job() -> int:
    from core.db import session_scope

    with session_scope() as session:
        return status_incidents_sync(session=session)


# --- incidents: operators ---------------------------------------------------------------------


def _require_operator(session: Session, actor: User) -> None:
    policy.require(
        policy.actor_for(session=session, user=actor, org_id=None),
        policy.Action.operator_support,
        policy.Target(),
    )


def _components(values: list[str]) -> list[str]:
    chosen = [v for v in COMPONENT_KEYS if v in set(values or [])]
    if not chosen:
        raise ValidationFailed(
            "Pick at least one affected component, so the right people see the incident.",
            field="components",
        )
    return chosen


def incident_open(
    *,
    session: Session,
    actor: User,
    title: str,
    components: list[str],
    impact: str,
    body: str,
    org_ids: list[int] | None = None,
) -> Incident:
    """Open an incident (operators). Flushes; the caller commits."""
    _require_operator(session, actor)
    title = (title or "").strip()
    if not title or len(title) > MAX_TITLE_CHARS:
        raise ValidationFailed(
            f"Give the incident a title of 1 to {MAX_TITLE_CHARS} characters.", field="title"
        )
    if impact not in IMPACTS:
        raise ValidationFailed("Impact must be degraded or outage.", field="impact")
    body = (body or "").strip()[:MAX_UPDATE_CHARS] or "We are investigating."
    now = utcnow()
    incident = Incident(
        title=title,
        status="investigating",
        impact=impact,
        components=_components(components),
        org_ids=sorted({int(i) for i in (org_ids or [])}),
        created_by_user_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(incident)
    session.flush()
    session.add(
        IncidentUpdate(
            incident_id=incident.id,
            status="investigating",
            body=body,
            author_user_id=actor.id,
            created_at=now,
        )
    )
    session.flush()
    notifications.incident_notify(
        session=session, incident=incident, status="investigating", body=body
    )
    return incident


def incident_update(
    *, session: Session, actor: User, incident_id: int, status: str, body: str
) -> Incident:
    """Post an update; `resolved` closes the incident. Flushes; the caller commits."""
    _require_operator(session, actor)
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound("That incident was not found. Reload the page.")
    if status not in INCIDENT_STATUSES:
        raise ValidationFailed(
            "Status must be investigating, identified, monitoring or resolved.", field="status"
        )
    body = (body or "").strip()
    if not body or len(body) > MAX_UPDATE_CHARS:
        raise ValidationFailed(
            f"Write what changed (1 to {MAX_UPDATE_CHARS} characters).", field="body"
        )
    now = utcnow()
    incident.status, incident.updated_at = status, now
    incident.resolved_at = now if status == "resolved" else None
    session.add(incident)
    session.add(
        IncidentUpdate(
            incident_id=incident.id,
            status=status,
            body=body,
            author_user_id=actor.id,
            created_at=now,
        )
    )
    session.flush()
    notifications.incident_notify(session=session, incident=incident, status=status, body=body)
    return incident


def fmt_utc(moment: datetime | None) -> str:
    return "" if moment is None else f"{as_utc(moment):%Y-%m-%d %H:%M} UTC"
