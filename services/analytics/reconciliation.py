"""Reconciliation: each organization's UTC day checked against four records the product owns.

1. metered usage (`usage_events`): what each finished run was charged;
2. the credit ledger: per generation, its hold minus what its settle/release/refund gave back
   (``-SUM(amount)`` over the entries that name the generation) must equal the metered
   charge, and a succeeded run must have its settle entry, a failed one its release;
3. provider-reported units: where the provider reported units, they must equal the metered
   units;
4. payments: every paid invoice of the day that carries credits has its purchase/grant
   entry, and every purchase entry of the day has its paid invoice.

A day is ``mismatch`` when anything disagrees (with the difference and the generation ids),
else ``pending`` while provider data may still arrive (the day ended less than
`PROVIDER_WINDOW` ago, or a run of the day is still queued or running), else
``reconciled``. Usage events of a reconciled run are marked ``reconciled``.

The job writes one row per organization and day (upsert on its unique key), each in a
transaction of its own, so two processes running it at once write the same answer.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from core import db
from core.clock import as_utc, utcnow
from models import (
    AnalyticsRollup,
    CreditLedgerEntry,
    Generation,
    Invoice,
    ReconciliationDay,
    UsageEvent,
)
from models.enums import LedgerEntryKind
from services.analytics.common import FAILED_OUTCOMES, SUCCEEDED, day_bounds, job_session
from services.credits import format_credits

log = logging.getLogger(__name__)

PROVIDER_WINDOW = timedelta(hours=24)  # provider usage may be reported up to a day late
RECENT_DAYS = 3  # the job checks today and the two days before, every run
RECHECK_PENDING_DAYS = 35  # and, this far back, days still pending or never checked
MAX_LISTED = 200  # generations named per day and list (the total is always given)
RECONCILED, PENDING, MISMATCH = "reconciled", "pending", "mismatch"
_LEDGER_KINDS = (
    LedgerEntryKind.hold.value,
    LedgerEntryKind.settle.value,
    LedgerEntryKind.release.value,
    LedgerEntryKind.refund.value,
)


@dataclass
class DayCheck:
    now: datetime
    status: str = RECONCILED
    metered_millicredits: int = 0
    ledger_millicredits: int = 0
    metered_units: int = 0
    provider_units: int = 0
    invoice_credits: int = 0
    ledger_paid_credits: int = 0
    issues: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    reconciled_event_ids: list[int] = field(default_factory=list)
    unreconciled_event_ids: list[int] = field(default_factory=list)

    @property
    def difference_millicredits(self) -> int:
        return self.ledger_millicredits - self.metered_millicredits


def _who(event: UsageEvent, public_id: str | None, api_key_id: int | None) -> dict[str, Any]:
    return {
        "generation": public_id or "",
        "request_id": event.request_id or "",
        "project_id": event.project_id or 0,
        "user_id": event.user_id or 0,
        "api_key_id": api_key_id or 0,
        "source": event.source,
    }


def _ledger_by_generation(session: Session, ids: list[int]) -> dict[int, dict[str, list[int]]]:
    """{generation id: {kind: [amounts]}} for holds and what closed or refunded them."""
    found: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for chunk in range(0, len(ids), 1000):
        for generation_id, kind, amount in session.exec(
            select(
                CreditLedgerEntry.generation_id,
                CreditLedgerEntry.kind,
                CreditLedgerEntry.amount_millicredits,
            ).where(
                col(CreditLedgerEntry.generation_id).in_(ids[chunk : chunk + 1000]),
                col(CreditLedgerEntry.kind).in_(_LEDGER_KINDS),
            )
        ).all():
            found[generation_id][kind].append(int(amount))
    return found


def _check_usage(session: Session, org_id: int, day: date, check: DayCheck) -> None:
    start, end = day_bounds(day)
    rows = session.exec(
        select(UsageEvent, Generation.public_id, Generation.api_key_id)
        .outerjoin(Generation, Generation.id == UsageEvent.generation_id)
        .where(
            UsageEvent.org_id == org_id,
            col(UsageEvent.occurred_at) >= start,
            col(UsageEvent.occurred_at) < end,
        )
        .order_by(col(UsageEvent.id))
    ).all()
    ledger = _ledger_by_generation(
        session, [event.generation_id for event, _, _ in rows if event.generation_id]
    )
    for event, public_id, api_key_id in rows:
        check.metered_millicredits += event.millicredits
        check.metered_units += event.units
        problems: list[str] = []
        difference = 0
        if event.generation_id is not None:
            entries = ledger.get(event.generation_id, {})
            charged = -sum(sum(amounts) for amounts in entries.values())
            check.ledger_millicredits += charged
            difference = charged - event.millicredits
            if event.outcome == SUCCEEDED and not entries.get(LedgerEntryKind.settle.value):
                problems.append("the run succeeded but its ledger has no settle entry")
            if event.outcome in FAILED_OUTCOMES and not entries.get(LedgerEntryKind.release.value):
                problems.append("the run failed but its hold was never released")
            if difference:
                problems.append(
                    f"the ledger charged {format_credits(charged)} credits, usage metered "
                    f"{format_credits(event.millicredits)}"
                )
        else:
            # Usage without a generation (e.g. a chat message) is charged as metered.
            check.ledger_millicredits += event.millicredits
        if event.provider_units is not None:
            check.provider_units += event.provider_units
            if event.outcome == SUCCEEDED and event.provider_units != event.units:
                problems.append(
                    f"the provider reported {event.provider_units} units, usage metered "
                    f"{event.units}"
                )
        if problems:
            check.issues.append(
                {
                    **_who(event, public_id, api_key_id),
                    "problem": "; ".join(problems),
                    "difference_millicredits": difference,
                }
            )
            check.unreconciled_event_ids.append(event.id)
        elif (
            event.provider_units is None
            and event.outcome == SUCCEEDED
            and end + PROVIDER_WINDOW > check.now
        ):
            check.waiting.append(
                {**_who(event, public_id, api_key_id), "reason": "provider units not reported yet"}
            )
            check.unreconciled_event_ids.append(event.id)
        else:
            check.reconciled_event_ids.append(event.id)


def _check_active_runs(session: Session, org_id: int, day: date, check: DayCheck) -> None:
    start, end = day_bounds(day)
    for generation in session.exec(
        select(Generation)
        .where(
            Generation.org_id == org_id,
            col(Generation.status).in_(("queued", "running")),
            col(Generation.created_at) >= start,
            col(Generation.created_at) < end,
        )
        .order_by(col(Generation.id))
    ):
        check.waiting.append(
            {
                "generation": generation.public_id,
                "request_id": generation.request_id or "",
                "project_id": generation.project_id or 0,
                "user_id": generation.user_id or 0,
                "api_key_id": generation.api_key_id or 0,
                "source": "api" if generation.api_key_id else "studio",
                "reason": f"the run is still {generation.status}",
            }
        )


def _check_payments(session: Session, org_id: int, day: date, check: DayCheck) -> None:
    start, end = day_bounds(day)
    invoices = list(
        session.exec(
            select(Invoice).where(
                Invoice.org_id == org_id,
                Invoice.status == "paid",
                col(Invoice.created_at) >= start,
                col(Invoice.created_at) < end,
            )
        )
    )
    paid_kinds = (LedgerEntryKind.purchase.value, LedgerEntryKind.grant.value)
    references = [invoice.provider_invoice_id for invoice in invoices]
    by_reference: dict[str, int] = defaultdict(int)
    if references:
        for reference, amount in session.exec(
            select(CreditLedgerEntry.reference, CreditLedgerEntry.amount_millicredits).where(
                CreditLedgerEntry.org_id == org_id,
                col(CreditLedgerEntry.kind).in_(paid_kinds),
                col(CreditLedgerEntry.reference).in_(references),
            )
        ).all():
            by_reference[reference] += int(amount)
    purchases = list(
        session.exec(
            select(CreditLedgerEntry).where(
                CreditLedgerEntry.org_id == org_id,
                CreditLedgerEntry.kind == LedgerEntryKind.purchase.value,
                col(CreditLedgerEntry.created_at) >= start,
                col(CreditLedgerEntry.created_at) < end,
            )
        )
    )
    unmatched_purchases = [p for p in purchases if p.reference not in by_reference]
    for invoice in invoices:
        if invoice.credits <= 0:
            continue
        check.invoice_credits += invoice.credits
        granted = by_reference.get(invoice.provider_invoice_id, 0)
        if not granted:
            # A top-up's purchase entry names its checkout, not the invoice: match by credits.
            same = next(
                (p for p in unmatched_purchases if p.amount_millicredits == invoice.credits * 1000),
                None,
            )
            if same is not None:
                unmatched_purchases.remove(same)
                granted = same.amount_millicredits
        check.ledger_paid_credits += granted // 1000
        if granted != invoice.credits * 1000:
            check.issues.append(
                {
                    "generation": "",
                    "invoice": invoice.provider_invoice_id,
                    "project_id": 0,
                    "user_id": 0,
                    "api_key_id": 0,
                    "source": "payments",
                    "problem": f"invoice {invoice.provider_invoice_id} was paid for "
                    f"{invoice.credits:,} credits; the ledger added "
                    f"{format_credits(granted)}",
                    "difference_millicredits": granted - invoice.credits * 1000,
                }
            )
    for purchase in unmatched_purchases:
        check.issues.append(
            {
                "generation": "",
                "invoice": purchase.reference,
                "project_id": 0,
                "user_id": 0,
                "api_key_id": 0,
                "source": "payments",
                "problem": f"a purchase of {format_credits(purchase.amount_millicredits)} credits "
                f"({purchase.reference or 'no reference'}) has no paid invoice",
                "difference_millicredits": purchase.amount_millicredits,
            }
        )


def reconciliation_check(
    *, session: Session, org_id: int, day: date, now: datetime | None = None
) -> DayCheck:
    """Compare the four records for one organization and UTC day (reads only)."""
    now = as_utc(now or utcnow())
    check = DayCheck(now=now)
    _check_usage(session, org_id, day, check)
    _check_active_runs(session, org_id, day, check)
    _check_payments(session, org_id, day, check)
    _, end = day_bounds(day)
    if check.issues:
        check.status = MISMATCH
    elif check.waiting or end + PROVIDER_WINDOW > now:
        check.status = PENDING
        if end + PROVIDER_WINDOW > now and not check.waiting:
            check.waiting.append(
                {
                    "generation": "",
                    "request_id": "",
                    "project_id": 0,
                    "user_id": 0,
                    "api_key_id": 0,
                    "source": "",
                    "reason": "the day ended less than "
                    f"{int(PROVIDER_WINDOW.total_seconds() // 3600)} hours ago; provider usage "
                    "may still arrive",
                }
            )
    return check


def reconciliation_day_store(
    *, session: Session, org_id: int, day: date, now: datetime | None = None
) -> DayCheck:
    """Check one organization's day, store the answer and mark its usage events. Flushes."""
    now = as_utc(now or utcnow())
    check = reconciliation_check(session=session, org_id=org_id, day=day, now=now)
    values = {
        "org_id": org_id,
        "day": day,
        "status": check.status,
        "metered_millicredits": check.metered_millicredits,
        "ledger_millicredits": check.ledger_millicredits,
        "metered_units": check.metered_units,
        "provider_units": check.provider_units,
        "invoice_credits": check.invoice_credits,
        "ledger_paid_credits": check.ledger_paid_credits,
        "difference_millicredits": check.difference_millicredits,
        "issues": check.issues[:MAX_LISTED],
        "waiting": check.waiting[:MAX_LISTED],
        "computed_at": now,
    }
    insert = pg_insert if db.is_postgres(session) else sqlite_insert
    statement = insert(ReconciliationDay).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["org_id", "day"],
        set_={key: statement.excluded[key] for key in values if key not in ("org_id", "day")},
    )
    session.exec(statement)
    for ids, flag in (
        (check.reconciled_event_ids, True),
        (check.unreconciled_event_ids, False),
    ):
        for chunk in range(0, len(ids), 1000):
            session.exec(
                update(UsageEvent)
                .where(col(UsageEvent.id).in_(ids[chunk : chunk + 1000]))
                .where(UsageEvent.reconciled != flag)
                .values(reconciled=flag)
            )
    session.flush()
    return check


@dataclass
class ReconcileResult:
    items: int = 0
    mismatches: int = 0
    errors: int = 0
    error_details: list[str] = field(default_factory=list)


def _org_days(session: Session, now: datetime) -> list[tuple[int, date]]:
    """Organization-days to check: the last `RECENT_DAYS` with any activity, older days still
    pending, and older days with usage never checked."""
    today = now.date()
    wanted: set[tuple[int, date]] = set()
    for offset in range(RECENT_DAYS):
        day = today - timedelta(days=offset)
        start, end = day_bounds(day)
        for model, column in (
            (UsageEvent, UsageEvent.occurred_at),
            (Invoice, Invoice.created_at),
        ):
            for org_id in session.exec(
                select(model.org_id)
                .where(col(column) >= start, col(column) < end)
                .group_by(model.org_id)
            ).all():
                wanted.add((org_id, day))
        for org_id in session.exec(
            select(Generation.org_id)
            .where(
                col(Generation.status).in_(("queued", "running")),
                col(Generation.created_at) >= start,
                col(Generation.created_at) < end,
            )
            .group_by(Generation.org_id)
        ).all():
            wanted.add((org_id, day))
    since = today - timedelta(days=RECHECK_PENDING_DAYS)
    stored = {
        (org_id, day): status
        for org_id, day, status in session.exec(
            select(ReconciliationDay.org_id, ReconciliationDay.day, ReconciliationDay.status).where(
                col(ReconciliationDay.day) >= since
            )
        ).all()
    }
    wanted |= {pair for pair, status in stored.items() if status != RECONCILED}
    # Days with usage never checked (the job was off, or the usage is older than a few days):
    # the roll-up knows which organizations used what on which day without reading events.
    for org_id, day in session.exec(
        select(AnalyticsRollup.org_id, AnalyticsRollup.day)
        .where(col(AnalyticsRollup.day) >= since)
        .group_by(AnalyticsRollup.org_id, AnalyticsRollup.day)
    ).all():
        if (org_id, day) not in stored:
            wanted.add((org_id, day))
    return sorted(wanted, key=lambda pair: (pair[1], pair[0]), reverse=True)


def analytics_reconcile_recent(
    *, engine: Engine | None = None, now: datetime | None = None
) -> ReconcileResult:
    """The job: check recent organization-days (each in its own transaction)."""
    now = as_utc(now or utcnow())
    result = ReconcileResult()
    with job_session(engine) as session:
        pairs = _org_days(session, now)
    for org_id, day in pairs:
        try:
            with job_session(engine) as session:
                check = reconciliation_day_store(session=session, org_id=org_id, day=day, now=now)
                session.commit()
            result.items += 1
            result.mismatches += check.status == MISMATCH
        except Exception as exc:
            result.errors += 1
            result.error_details.append(
                f"org {org_id} {day}: {exc.__class__.__name__}: {exc}"[:300]
            )
            log.exception("reconciliation of org %s on %s failed", org_id, day)
    return result


def reconciliation_days(
    *, session: Session, org_id: int, first: date, last: date
) -> list[ReconciliationDay]:
    """Stored answers for the organization's days in [first, last], oldest first."""
    return list(
        session.exec(
            select(ReconciliationDay)
            .where(
                ReconciliationDay.org_id == org_id,
                col(ReconciliationDay.day) >= first,
                col(ReconciliationDay.day) <= last,
            )
            .order_by(col(ReconciliationDay.day))
        )
    )


def last_reconciled_at(*, session: Session, org_id: int) -> datetime | None:
    return as_utc(
        session.exec(
            select(func.max(ReconciliationDay.computed_at)).where(
                ReconciliationDay.org_id == org_id
            )
        ).one()
    )
