"""/operator/support: the support queue, one ticket with its run and ledger, incidents, and
searches that found nothing. Platform operators only (`operator_support`), re-checked in every
handler; everyone else gets the policy's explanation and no data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import reflex as rx
from sqlmodel import Session, col, select

from core import db, routes
from models import Organization, SupportTicket, User
from services import help_center, policy
from services import status as status_service
from services import support as support_service
from services.errors import DomainError, NotFound
from state.org_page import bounded, browser_id, form_fields
from state.session import SessionState
from state.status import IncidentRow, incident_rows

T = TypeVar("T")
MAX_BODY_INPUT = support_service.MAX_BODY_CHARS + 1
QUEUE_FILTERS = ("active", *support_service.STATUSES)
# For the view: the incident form's choices.
COMPONENTS = status_service.COMPONENTS
IMPACTS = status_service.IMPACTS
INCIDENT_STATUSES = status_service.INCIDENT_STATUSES


@dataclass
class QueueRow:
    ticket_id: int
    subject: str
    org: str
    requester: str
    status: str
    status_label: str
    priority: str
    assignee: str
    due: str
    created: str


@dataclass
class DetailLine:
    label: str
    value: str


@dataclass
class ThreadRow:
    author: str
    kind: str
    body: str
    at: str


@dataclass
class TimelineRow:
    label: str
    value: str
    at: str


@dataclass
class MissRow:
    query: str
    count: int
    last: str


def _name(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id else None
    return f"{user.name} ({user.email})" if user else "—"


class OperatorSupportState(rx.State):
    allowed: bool = False
    denied_message: str = ""
    error: str = ""
    notice: str = ""
    status_filter: str = "active"
    queue: list[QueueRow] = []

    ticket_id: int = 0
    ticket_subject: str = ""
    ticket_status: str = ""
    ticket_priority: str = ""
    details: list[DetailLine] = []
    thread: list[ThreadRow] = []
    run_status: str = ""
    run_failure: str = ""
    timeline: list[TimelineRow] = []
    ledger: list[TimelineRow] = []

    incidents: list[IncidentRow] = []
    misses: list[MissRow] = []

    # --- who acts ----------------------------------------------------------------------------

    async def _operator(self, session: Session) -> User | None:
        session_state = await self.get_state(SessionState)
        user = session_state._current_user(session)
        if user is None:
            return None
        actor = policy.actor_for(session=session, user=user, org_id=None)
        decision = policy.can(actor, policy.Action.operator_support, policy.Target())
        self.allowed, self.denied_message = decision.allowed, decision.message
        return user if decision.allowed else None

    def _forget(self) -> None:
        self.queue, self.thread, self.details, self.incidents, self.misses = [], [], [], [], []
        self.timeline, self.ledger, self.ticket_id = [], [], 0

    async def _do(self, work: Callable[[Session, User], T], success: str) -> T | None:
        """One operator action in one transaction, then a refresh."""
        self.error = self.notice = ""
        with db.new_session() as session:
            user = await self._operator(session)
            if user is None:
                self._forget()
                return None
            try:
                result = work(session, user)
                session.commit()
            except DomainError as error:
                session.rollback()
                self.error = error.message
                return None
            self._refresh(session, user)
        self.notice = success
        return result

    # --- read models -------------------------------------------------------------------------

    def _refresh(self, session: Session, user: User) -> None:
        status = self.status_filter if self.status_filter in support_service.STATUSES else ""
        tickets = support_service.support_queue(session=session, actor=user, status=status)
        org_ids = {t.org_id for t in tickets if t.org_id}
        orgs = {
            o.id: o
            for o in session.exec(select(Organization).where(col(Organization.id).in_(org_ids)))
        }
        self.queue = [
            QueueRow(
                ticket_id=t.id,
                subject=t.subject,
                org=orgs[t.org_id].slug if t.org_id in orgs else "—",
                requester=_name(session, t.user_id),
                status=t.status,
                status_label=support_service.STATUS_LABELS.get(t.status, t.status),
                priority=t.priority,
                assignee=_name(session, t.assignee_user_id),
                due=support_service.due_label(t.due_at),
                created=status_service.fmt_utc(t.created_at),
            )
            for t in tickets
        ]
        if self.ticket_id:
            self._fill_ticket(session, user)
        self.incidents = incident_rows(
            session, status_service.incidents_history(session=session, days=14)
        )
        self.misses = [
            MissRow(m.query, m.count, status_service.fmt_utc(m.last_at))
            for m in help_center.help_search_misses(session=session)
        ]

    def _fill_ticket(self, session: Session, user: User) -> None:
        ticket = session.get(SupportTicket, self.ticket_id)
        if ticket is None:
            self.ticket_id = 0
            return
        org = session.get(Organization, ticket.org_id) if ticket.org_id else None
        self.ticket_subject = ticket.subject
        self.ticket_status, self.ticket_priority = ticket.status, ticket.priority
        self.details = [
            DetailLine(label, value)
            for label, value in (
                ("Organization", f"{org.name} ({org.slug}, {org.plan_key})" if org else "—"),
                ("From", _name(session, ticket.user_id)),
                ("Generation ID", ticket.generation_public_id or ""),
                ("Error code", ticket.error_code or ""),
                ("Request ID", ticket.request_id or ""),
                ("Model", ticket.model_key or ""),
                ("Tool", ticket.tool_key or ""),
                ("When (UTC)", status_service.fmt_utc(ticket.occurred_at)),
                ("Due", support_service.due_label(ticket.due_at)),
                ("Assignee", _name(session, ticket.assignee_user_id)),
            )
            if value
        ]
        labels = {"customer": "Customer", "support": "Support reply", "note": "Internal note"}
        self.thread = [
            ThreadRow(
                f"{labels.get(m.kind, m.kind)} · {_name(session, m.author_user_id)}",
                m.kind,
                m.body,
                status_service.fmt_utc(m.created_at),
            )
            for m in support_service.ticket_messages(
                session=session, ticket_id=ticket.id, include_notes=True
            )
        ]
        context = support_service.ticket_context(session=session, actor=user, ticket_id=ticket.id)
        if context is None:
            self.run_status = self.run_failure = ""
            self.timeline, self.ledger = [], []
        else:
            self.run_status, self.run_failure = context.generation_status, context.failure
            self.timeline = [TimelineRow(s, "", at) for s, at in context.timeline]
            self.ledger = [TimelineRow(k, amount, at) for k, amount, at in context.ledger]

    # --- events ------------------------------------------------------------------------------

    @rx.event
    async def load(self):
        self.error = self.notice = ""
        with db.new_session() as session:
            user = await self._operator(session)
            if user is None:
                self._forget()
                if not (await self.get_state(SessionState)).signed_in:
                    return rx.redirect(routes.sign_in(routes.OPERATOR_SUPPORT))
                return None
            self._refresh(session, user)
        return None

    @rx.event
    async def filter_status(self, value: Any):
        value = bounded(value, 16)
        self.status_filter = value if value in QUEUE_FILTERS else "active"
        return OperatorSupportState.load

    @rx.event
    async def open_ticket(self, ticket_id: Any):
        if not self.allowed:
            self.error = self.denied_message or "This is available to platform operators only."
            return None
        try:
            self.ticket_id = browser_id(ticket_id)
        except NotFound as error:
            self.error = error.message
            return None
        return OperatorSupportState.load

    @rx.event
    async def reply(self, form: dict):
        body = bounded(form_fields(form).get("body", ""), MAX_BODY_INPUT)
        ticket_id = self.ticket_id
        done = await self._do(
            lambda s, u: support_service.ticket_operator_reply(
                session=s, actor=u, ticket_id=ticket_id, body=body
            ),
            "Reply sent by mail and shown to the customer; the ticket waits on them.",
        )
        if done is not None:
            return rx.set_value("operator-reply", "")
        return None

    @rx.event
    async def add_note(self, form: dict):
        body = bounded(form_fields(form).get("note", ""), MAX_BODY_INPUT)
        ticket_id = self.ticket_id
        done = await self._do(
            lambda s, u: support_service.ticket_note(
                session=s, actor=u, ticket_id=ticket_id, body=body
            ),
            "Internal note added (customers never see it).",
        )
        if done is not None:
            return rx.set_value("operator-note", "")
        return None

    @rx.event
    async def set_ticket_status(self, value: Any):
        status = bounded(value, 16)
        ticket_id = self.ticket_id
        await self._do(
            lambda s, u: support_service.ticket_triage(
                session=s, actor=u, ticket_id=ticket_id, status=status
            ),
            "Status changed.",
        )

    @rx.event
    async def set_ticket_priority(self, value: Any):
        priority = bounded(value, 16)
        ticket_id = self.ticket_id
        await self._do(
            lambda s, u: support_service.ticket_triage(
                session=s, actor=u, ticket_id=ticket_id, priority=priority
            ),
            "Priority changed.",
        )

    @rx.event
    async def assign_to_me(self):
        ticket_id = self.ticket_id
        await self._do(
            lambda s, u: support_service.ticket_triage(
                session=s, actor=u, ticket_id=ticket_id, assign_to_self=True
            ),
            "Assigned to you.",
        )

    @rx.event
    async def open_incident(self, form: dict):
        fields = form_fields(form)
        title = bounded(fields.get("title", ""), status_service.MAX_TITLE_CHARS + 1)
        body = bounded(fields.get("body", ""), status_service.MAX_UPDATE_CHARS + 1)
        impact = bounded(fields.get("impact", "degraded"), 16)
        components = [k for k in status_service.COMPONENT_KEYS if fields.get(f"component-{k}")]
        done = await self._do(
            lambda s, u: status_service.incident_open(
                session=s,
                actor=u,
                title=title,
                components=components,
                impact=impact,
                body=body,
            ),
            "Incident opened: it shows on /status and as a banner in the app.",
        )
        if done is not None:
            return [rx.set_value("incident-title", ""), rx.set_value("incident-body", "")]
        return None

    @rx.event
    async def update_incident(self, form: dict):
        fields = form_fields(form)
        status = bounded(fields.get("status", ""), 16)
        body = bounded(fields.get("body", ""), status_service.MAX_UPDATE_CHARS + 1)
        try:
            incident_id = browser_id(fields.get("incident_id", ""))
        except NotFound as error:
            self.error = error.message
            return
        await self._do(
            lambda s, u: status_service.incident_update(
                session=s, actor=u, incident_id=incident_id, status=status, body=body
            ),
            "Incident updated.",
        )
