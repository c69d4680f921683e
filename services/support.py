"""Support tickets: a structured request from where the person was, an operator queue, replies
by mail and in-app, internal notes, and the run's timeline and ledger beside a ticket.

Invariants:
- A ticket belongs to one organization and the person who filed it; only they (and platform
  operators) read it. Internal notes are never shown to the customer.
- A double submit files one ticket: the form carries a one-time key (unique column); the
  second submit returns the first ticket.
- A generation named on a ticket must belong to the ticket's organization; its model, tool,
  project, error code, request id and finish time fill the fields left empty.
- The due time comes from the organization's plan (`FIRST_REPLY_HOURS`).
- Statuses: new -> open -> waiting (on customer) -> resolved; a customer reply re-opens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import routes
from core.clock import as_utc, utcnow
from core.settings import get_settings
from models import (
    CreditLedgerEntry,
    Generation,
    Organization,
    Project,
    SupportTicket,
    SupportTicketMessage,
    User,
)
from services import policy
from services.error_codes import CATALOGUE, Code
from services.errors import NotFound, ValidationFailed
from services.mail import mail_send

STATUSES = ("new", "open", "waiting", "resolved")
STATUS_LABELS = {
    "new": "New",
    "open": "Open",
    "waiting": "Waiting on customer",
    "resolved": "Resolved",
}
PRIORITIES = ("low", "normal", "high", "urgent")
FIRST_REPLY_HOURS = {"scale": 8, "growth": 24, "starter": 48, "free": 72}
DEFAULT_REPLY_HOURS = 72
MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 5000
MAX_FIELD_CHARS = 64
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class TicketFields:
    """What the form carries; every field is text from the browser (validated here)."""

    subject: str = ""
    body: str = ""
    project_id: int | None = None
    tool_key: str = ""
    model_key: str = ""
    occurred_at: str = ""  # "YYYY-MM-DD HH:MM" UTC, or ISO 8601
    error_code: str = ""
    request_id: str = ""
    generation_id: str = ""  # the public id, gen_...


def _token(value: str, label: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not _TOKEN_RE.match(value):
        raise ValidationFailed(
            f"The {label} looks wrong: use letters, digits, dashes or underscores "
            f"(up to {MAX_FIELD_CHARS}). Copy it again from where you saw it.",
            field=label,
        )
    return value


def _when(value: str) -> datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(value[:19].rstrip("Z"), fmt).replace(tzinfo=None)
        except ValueError:
            continue
    raise ValidationFailed(
        "Write the time as YYYY-MM-DD HH:MM in UTC, for example 2026-11-26 14:05.",
        field="occurred_at",
    )


def _due(session: Session, org: Organization, start: datetime) -> datetime:
    return start + timedelta(hours=FIRST_REPLY_HOURS.get(org.plan_key, DEFAULT_REPLY_HOURS))


def _generation_in_org(session: Session, org_id: int, public_id: str) -> Generation:
    generation = session.exec(select(Generation).where(Generation.public_id == public_id)).first()
    if generation is None or generation.org_id != org_id:
        raise ValidationFailed(
            f"No run {public_id} was found in this organization. Copy the generation ID from "
            "History again, or leave the field empty.",
            field="generation_id",
        )
    return generation


def run_for_report(
    *, session: Session, actor: policy.Actor, org_id: int, public_id: str
) -> Generation | None:
    """The run a person reports, when it is in `org_id` and visible to them (else None)."""
    generation = session.exec(
        select(Generation).where(Generation.public_id == (public_id or "")[:40])
    ).first()
    if generation is None or generation.org_id != org_id:
        return None
    target = policy.target_for(session=session, org_id=org_id, project_id=generation.project_id)
    return generation if policy.can(actor, policy.Action.asset_view, target) else None


def ticket_create(
    *,
    session: Session,
    actor: User,
    org_id: int,
    fields: TicketFields,
    idempotency_key: str,
) -> SupportTicket:
    """File a ticket for `actor` in `org_id` (the caller checked membership). Flushes.

    Raises:
        ValidationFailed: a field is empty, too long or names something that is not there.
    """
    key = f"{actor.id}:{(idempotency_key or '')[:60]}"
    if idempotency_key:
        existing = session.exec(
            select(SupportTicket).where(SupportTicket.idempotency_key == key)
        ).first()
        if existing is not None:
            return existing
    subject = (fields.subject or "").strip()
    if len(subject) < 3 or len(subject) > MAX_SUBJECT_CHARS:
        raise ValidationFailed(
            f"Write a subject of 3 to {MAX_SUBJECT_CHARS} characters that says what went wrong.",
            field="subject",
        )
    body = (fields.body or "").strip()
    if len(body) > MAX_BODY_CHARS:
        raise ValidationFailed(
            f"The description is {len(body)} characters; shorten it to {MAX_BODY_CHARS}.",
            field="body",
        )
    error_code = _token(fields.error_code, "error code")
    if error_code and error_code not in {code.value for code in Code}:
        raise ValidationFailed(
            f"{error_code} is not one of our error codes. Copy it again from the message, or "
            "leave the field empty.",
            field="error_code",
        )
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound("This organization was not found. Reload the page.")
    project_id = fields.project_id
    if project_id is not None:
        project = session.get(Project, project_id)
        if project is None or project.org_id != org_id:
            project_id = None
    ticket = SupportTicket(
        org_id=org_id,
        user_id=actor.id,
        project_id=project_id,
        tool_key=_token(fields.tool_key, "tool"),
        model_key=_token(fields.model_key, "model"),
        occurred_at=_when(fields.occurred_at),
        error_code=error_code,
        request_id=_token(fields.request_id, "request ID"),
        generation_public_id=_token(fields.generation_id, "generation ID"),
        subject=subject,
        body=body,
        status="new",
        priority="normal",
        idempotency_key=key if idempotency_key else None,
    )
    if ticket.generation_public_id:
        generation = _generation_in_org(session, org_id, ticket.generation_public_id)
        ticket.model_key = ticket.model_key or generation.model_key
        ticket.tool_key = ticket.tool_key or generation.tool_key
        ticket.project_id = ticket.project_id or generation.project_id
        ticket.error_code = ticket.error_code or generation.failure_code
        ticket.request_id = ticket.request_id or generation.request_id
        ticket.occurred_at = ticket.occurred_at or generation.finished_at or generation.created_at
    now = utcnow()
    ticket.created_at = ticket.updated_at = now
    ticket.due_at = _due(session, org, now)
    try:
        with session.begin_nested():
            session.add(ticket)
            session.flush()
    except IntegrityError:  # the same form submitted twice at once
        existing = session.exec(
            select(SupportTicket).where(SupportTicket.idempotency_key == key)
        ).first()
        if existing is None:
            raise
        return existing
    session.add(
        SupportTicketMessage(
            ticket_id=ticket.id, author_user_id=actor.id, kind="customer", body=body or subject
        )
    )
    mail_send(
        session=session,
        to=actor.email,
        subject=f"[Ticket #{ticket.id}] We received your request: {subject}"[:300],
        body_text=(
            f"Hello {actor.name},\n\nWe received your support request #{ticket.id} for "
            f"{org.name} ({org.slug}): {subject}\n\nWe reply by "
            f"{as_utc(ticket.due_at):%Y-%m-%d %H:%M} UTC at the latest. You can follow it under "
            f"Help > My tickets: "
            f"{routes.absolute(get_settings().app_base_url, routes.support_tickets(org.slug))}\n"
        ),
    )
    session.flush()
    return ticket


def tickets_for_user(*, session: Session, user_id: int, org_id: int) -> list[SupportTicket]:
    return list(
        session.exec(
            select(SupportTicket)
            .where(SupportTicket.user_id == user_id, SupportTicket.org_id == org_id)
            .order_by(col(SupportTicket.created_at).desc(), col(SupportTicket.id).desc())
            .limit(100)
        )
    )


def ticket_messages(
    *, session: Session, ticket_id: int, include_notes: bool
) -> list[SupportTicketMessage]:
    query = select(SupportTicketMessage).where(SupportTicketMessage.ticket_id == ticket_id)
    if not include_notes:
        query = query.where(SupportTicketMessage.kind != "note")
    return list(
        session.exec(query.order_by(col(SupportTicketMessage.created_at), SupportTicketMessage.id))
    )


def _own_ticket(session: Session, actor: User, org_id: int, ticket_id: int) -> SupportTicket:
    ticket = session.get(SupportTicket, ticket_id)
    if ticket is None or ticket.user_id != actor.id or ticket.org_id != org_id:
        raise NotFound("That ticket was not found. Reload the page.")
    return ticket


def _body(body: str) -> str:
    body = (body or "").strip()
    if not body or len(body) > MAX_BODY_CHARS:
        raise ValidationFailed(
            f"Write a message of 1 to {MAX_BODY_CHARS} characters.", field="body"
        )
    return body


def ticket_customer_reply(
    *, session: Session, actor: User, org_id: int, ticket_id: int, body: str
) -> SupportTicket:
    """The customer answers on their own ticket; a waiting or resolved ticket re-opens."""
    ticket = _own_ticket(session, actor, org_id, ticket_id)
    session.add(
        SupportTicketMessage(
            ticket_id=ticket.id, author_user_id=actor.id, kind="customer", body=_body(body)
        )
    )
    if ticket.status in ("waiting", "resolved"):
        ticket.status = "open"
    ticket.updated_at = utcnow()
    session.add(ticket)
    session.flush()
    return ticket


# --- operators --------------------------------------------------------------------------------


def _require_operator(session: Session, actor: User) -> None:
    policy.require(
        policy.actor_for(session=session, user=actor, org_id=None),
        policy.Action.operator_support,
        policy.Target(),
    )


def support_queue(
    *, session: Session, actor: User, status: str = "", limit: int = 200
) -> list[SupportTicket]:
    """Tickets for operators: unresolved first by due time, or one status."""
    _require_operator(session, actor)
    query = select(SupportTicket)
    if status in STATUSES:
        query = query.where(SupportTicket.status == status)
    else:
        query = query.where(SupportTicket.status != "resolved")
    query = query.order_by(col(SupportTicket.due_at).asc(), col(SupportTicket.id).asc())
    return list(session.exec(query.limit(limit)))


def _ticket(session: Session, ticket_id: int) -> SupportTicket:
    ticket = session.get(SupportTicket, ticket_id)
    if ticket is None:
        raise NotFound("That ticket was not found. Reload the queue.")
    return ticket


def ticket_operator_reply(
    *, session: Session, actor: User, ticket_id: int, body: str
) -> SupportTicketMessage:
    """Answer the customer in-app and by mail; the ticket waits on the customer. Flushes."""
    _require_operator(session, actor)
    ticket = _ticket(session, ticket_id)
    text = _body(body)
    message = SupportTicketMessage(
        ticket_id=ticket.id, author_user_id=actor.id, kind="support", body=text, mailed=False
    )
    session.add(message)
    requester = session.get(User, ticket.user_id) if ticket.user_id else None
    org = session.get(Organization, ticket.org_id) if ticket.org_id else None
    if requester is not None:
        link = routes.support_tickets(org.slug) if org else routes.HELP
        mail_send(
            session=session,
            to=requester.email,
            subject=f"[Ticket #{ticket.id}] Reply: {ticket.subject}"[:300],
            body_text=(
                f"{text}\n\n-- Creative Studio support\nReply under Help > My tickets: "
                f"{routes.absolute(get_settings().app_base_url, link)}\n"
            ),
        )
        message.mailed = True
    ticket.status = "waiting"
    ticket.assignee_user_id = ticket.assignee_user_id or actor.id
    ticket.updated_at = utcnow()
    session.add(ticket)
    session.flush()
    return message


def ticket_note(
    *, session: Session, actor: User, ticket_id: int, body: str
) -> SupportTicketMessage:
    """An internal note, for operators only."""
    _require_operator(session, actor)
    ticket = _ticket(session, ticket_id)
    note = SupportTicketMessage(
        ticket_id=ticket.id, author_user_id=actor.id, kind="note", body=_body(body)
    )
    session.add(note)
    session.flush()
    return note


def ticket_triage(
    *,
    session: Session,
    actor: User,
    ticket_id: int,
    status: str | None = None,
    priority: str | None = None,
    assign_to_self: bool | None = None,
) -> SupportTicket:
    """Change a ticket's status, priority or assignee (operators)."""
    _require_operator(session, actor)
    ticket = _ticket(session, ticket_id)
    if status is not None:
        if status not in STATUSES:
            raise ValidationFailed("Pick one of: new, open, waiting, resolved.", field="status")
        ticket.status = status
    if priority is not None:
        if priority not in PRIORITIES:
            raise ValidationFailed("Pick one of: low, normal, high, urgent.", field="priority")
        ticket.priority = priority
    if assign_to_self is not None:
        ticket.assignee_user_id = actor.id if assign_to_self else None
    ticket.updated_at = utcnow()
    session.add(ticket)
    session.flush()
    return ticket


@dataclass(frozen=True)
class TicketContext:
    """What an operator sees beside a ticket: the run's timeline and its ledger entries."""

    generation_status: str
    timeline: list[tuple[str, str]]  # (status, at)
    failure: str
    ledger: list[tuple[str, str, str]]  # (kind, amount, at)


def ticket_context(*, session: Session, actor: User, ticket_id: int) -> TicketContext | None:
    _require_operator(session, actor)
    ticket = _ticket(session, ticket_id)
    if not ticket.generation_public_id:
        return None
    generation = session.exec(
        select(Generation).where(Generation.public_id == ticket.generation_public_id)
    ).first()
    if generation is None or generation.org_id != ticket.org_id:
        return None
    from services.credits import format_credits

    timeline = [
        (str(step.get("status", "")), str(step.get("at", ""))[:19].replace("T", " "))
        for step in (generation.status_history or [])
        if isinstance(step, dict)
    ]
    entries = session.exec(
        select(CreditLedgerEntry)
        .where(CreditLedgerEntry.generation_id == generation.id)
        .order_by(col(CreditLedgerEntry.created_at), CreditLedgerEntry.id)
    )
    ledger = [
        (
            str(e.kind),
            format_credits(e.amount_millicredits),
            f"{as_utc(e.created_at):%Y-%m-%d %H:%M:%S}",
        )
        for e in entries
    ]
    failure = ""
    if generation.failure_code:
        info = (
            CATALOGUE.get(Code(generation.failure_code))
            if generation.failure_code in {c.value for c in Code}
            else None
        )
        failure = f"{generation.failure_code}: {generation.failure_reason or (info.message if info else '')}"
    return TicketContext(generation.status, timeline, failure, ledger)


def due_label(due_at: datetime | None) -> str:
    if due_at is None:
        return ""
    left = as_utc(due_at) - utcnow()
    hours = int(left.total_seconds() // 3600)
    when = f"{as_utc(due_at):%Y-%m-%d %H:%M} UTC"
    return f"{when} (overdue)" if hours < 0 else f"{when} (in {hours} h)"
