"""CSV export of the usage on screen: one row per usage event of the scope and period.

The rows sum to the page's figures (credits, runs, failures, refunds) because they are the
events the roll-up sums. Times are UTC ISO 8601; generation and request ids are included;
every text cell goes through the ledger export's formula-injection guard.
"""

from __future__ import annotations

import csv
import io

from sqlmodel import Session, col, func, select

from core.clock import as_utc
from models import AIModel, ApiKey, Generation, Project, UsageEvent
from services import policy
from services.analytics.common import FAILED_OUTCOMES, SUCCEEDED, day_bounds
from services.analytics.queries import Period, Scope, member_labels
from services.credits import _csv_safe, format_credits  # the one formula-injection guard
from services.error_codes import Code
from services.errors import ValidationFailed, error_with_code

MAX_EXPORT_ROWS = 200_000
CSV_COLUMNS = (
    "occurred_at_utc",
    "source",
    "project",
    "member",
    "api_key",
    "model",
    "modality",
    "outcome",
    "failed",
    "refunded",
    "units",
    "credits",
    "generation_id",
    "request_id",
)


def _filters(org_id: int, scope: Scope, period: Period) -> list:
    start, _ = day_bounds(period.first)
    _, end = day_bounds(period.last)
    filters = [
        UsageEvent.org_id == org_id,
        col(UsageEvent.occurred_at) >= start,
        col(UsageEvent.occurred_at) < end,
    ]
    if scope.kind == "project":
        filters.append(UsageEvent.project_id == scope.project_id)
    elif scope.kind == "member":
        filters.append(UsageEvent.user_id == scope.user_id)
    elif scope.kind == "api_key":
        filters.append(Generation.api_key_id == scope.api_key_id)
    elif scope.kind == "source":
        filters.append(UsageEvent.source == scope.source)
    return filters


def analytics_csv(
    *, session: Session, actor: policy.Actor, org_id: int, scope: Scope, period: Period
) -> str:
    """The usage events of the scope and period as CSV, oldest first.

    Raises:
        ValidationFailed (analytics_export_too_large): more than `MAX_EXPORT_ROWS` events.
    """
    policy.require(
        actor, policy.Action.analytics_view, policy.target_for(session=session, org_id=org_id)
    )
    filters = _filters(org_id, scope, period)
    count = session.exec(
        select(func.count())
        .select_from(UsageEvent)
        .outerjoin(Generation, Generation.id == UsageEvent.generation_id)
        .where(*filters)
    ).one()
    if count > MAX_EXPORT_ROWS:
        raise error_with_code(
            Code.analytics_export_too_large,
            f"This view has {count:,} usage rows; one export holds at most "
            f"{MAX_EXPORT_ROWS:,}. Pick a shorter period or a narrower scope.",
            base=ValidationFailed,
            field="period",
        )
    models = dict(session.exec(select(AIModel.key, AIModel.display_name)).all())
    projects = dict(
        session.exec(select(Project.id, Project.name).where(Project.org_id == org_id)).all()
    )
    keys = dict(session.exec(select(ApiKey.id, ApiKey.name).where(ApiKey.org_id == org_id)).all())
    rows = session.exec(
        select(UsageEvent, Generation.public_id, Generation.api_key_id)
        .outerjoin(Generation, Generation.id == UsageEvent.generation_id)
        .where(*filters)
        .order_by(col(UsageEvent.occurred_at), col(UsageEvent.id))
    ).all()
    users = member_labels(session=session, user_ids={event.user_id for event, _, _ in rows})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for event, public_id, api_key_id in rows:
        occurred = as_utc(event.occurred_at)
        writer.writerow(
            [
                occurred.isoformat() if occurred else "",
                _csv_safe(event.source),
                _csv_safe(projects.get(event.project_id, "") if event.project_id else ""),
                _csv_safe(users.get(event.user_id, "") if event.user_id else ""),
                _csv_safe(keys.get(api_key_id, "") if api_key_id else ""),
                _csv_safe(models.get(event.model_key, event.model_key)),
                _csv_safe(event.modality),
                _csv_safe(event.outcome),
                1 if event.outcome in FAILED_OUTCOMES else 0,
                1 if event.outcome != SUCCEEDED else 0,
                event.units,
                format_credits(event.millicredits).replace(",", ""),
                _csv_safe(public_id or ""),
                _csv_safe(event.request_id or ""),
            ]
        )
    return buffer.getvalue()
