"""/org/<slug>/help (in-app help), .../help/support (Contact support), .../help/tickets (my
tickets and replies) and .../help/notifications (notification preferences).

Every handler goes through the org-page skeleton (`OrgPageState._act`): any member may file
and read their own tickets (`org_view`); ticket ids from the browser are re-checked against
the person and organization by the service. The one-time form key only de-duplicates a double
submit; it grants nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import reflex as rx

from core import db, routes
from core.clock import utcnow
from models import Project, SupportTicket
from services import help_center, policy
from services import notifications as notification_service
from services import status as status_service
from services import support as support_service
from services.errors import NotFound
from state.help import HitRow, hit_rows
from state.org_page import Acting, OrgPageState, bounded, browser_id, form_fields

Action = policy.Action
MAX_SUBJECT_INPUT = support_service.MAX_SUBJECT_CHARS + 1
MAX_BODY_INPUT = support_service.MAX_BODY_CHARS + 1
MAX_FIELD_INPUT = support_service.MAX_FIELD_CHARS + 1


@dataclass
class TicketRow:
    ticket_id: int
    subject: str
    status: str
    status_label: str
    created: str
    generation_id: str
    error_code: str


@dataclass
class MessageRow:
    author: str
    kind: str
    body: str
    at: str


@dataclass
class PrefRow:
    kind: str
    label: str
    description: str
    enabled: bool


def _utc(moment) -> str:
    return status_service.fmt_utc(moment)


def ticket_row(ticket: SupportTicket) -> TicketRow:
    return TicketRow(
        ticket_id=ticket.id,
        subject=ticket.subject,
        status=ticket.status,
        status_label=support_service.STATUS_LABELS.get(ticket.status, ticket.status),
        created=_utc(ticket.created_at),
        generation_id=ticket.generation_public_id or "",
        error_code=ticket.error_code or "",
    )


class SupportState(OrgPageState, rx.State):
    # the form, pre-filled from where the person came from
    subject: str = ""
    project_name: str = ""
    _project_ref: str = ""  # project id as text, from the link
    tool: str = ""
    model: str = ""
    time_utc: str = ""
    reported_code: str = ""  # the error code the person saw (OrgPageState.error_code is ours)
    request_id: str = ""
    generation_id: str = ""
    form_key: str = ""
    suggestions: list[HitRow] = []
    _created_ticket_id: int = 0

    # status summary on the in-app help page
    status_headline: str = ""
    status_level: str = "operational"

    # my tickets
    tickets: list[TicketRow] = []
    open_ticket_id: int = 0
    open_ticket_subject: str = ""
    open_ticket_status: str = ""
    messages: list[MessageRow] = []

    # notification preferences
    prefs: list[PrefRow] = []
    always_on: list[str] = list(notification_service.ALWAYS_ON)

    @rx.var
    def org_address(self) -> str:
        return self._page_slug

    @rx.var
    def support_href(self) -> str:
        return routes.support_new(self._page_slug) if self._page_slug else routes.HELP

    @rx.var
    def tickets_href(self) -> str:
        return routes.support_tickets(self._page_slug) if self._page_slug else routes.HELP

    @rx.var
    def notifications_href(self) -> str:
        return routes.help_notifications(self._page_slug) if self._page_slug else routes.HELP

    # --- the skeleton's hooks --------------------------------------------------------------

    def _refresh(self, acting: Acting) -> None:
        session, user, org = acting.session, acting.user, acting.org
        platform = status_service.platform_status(session=session)
        self.status_headline, self.status_level = platform.headline, platform.level
        self.tickets = [
            ticket_row(t)
            for t in support_service.tickets_for_user(
                session=session, user_id=user.id, org_id=org.id
            )
        ]
        if self.open_ticket_id:
            self._fill_open_ticket(acting)
        prefs = notification_service.preferences_get(session=session, user_id=user.id)
        self.prefs = [
            PrefRow(kind, label, description, prefs[kind])
            for kind, label, description in notification_service.KINDS
        ]

    def _fill_open_ticket(self, acting: Acting) -> None:
        ticket = acting.session.get(SupportTicket, self.open_ticket_id)
        if ticket is None or ticket.user_id != acting.user.id or ticket.org_id != acting.org.id:
            self.open_ticket_id, self.messages = 0, []
            return
        self.open_ticket_subject = ticket.subject
        self.open_ticket_status = support_service.STATUS_LABELS.get(ticket.status, ticket.status)
        from models import User

        rows = support_service.ticket_messages(
            session=acting.session, ticket_id=ticket.id, include_notes=False
        )
        names: dict[int | None, str] = {}
        for row in rows:
            if row.author_user_id not in names:
                author = (
                    acting.session.get(User, row.author_user_id) if row.author_user_id else None
                )
                names[row.author_user_id] = (
                    "You"
                    if row.author_user_id == acting.user.id
                    else ("Support" if row.kind == "support" else (author.name if author else ""))
                )
        self.messages = [
            MessageRow(names[row.author_user_id], row.kind, row.body, _utc(row.created_at))
            for row in rows
        ]

    # --- events: pages ---------------------------------------------------------------------

    @rx.event
    async def load(self):
        self.open_ticket_id, self.messages, self._created_ticket_id = 0, [], 0
        await self._load()

    @rx.event
    async def load_support(self):
        """The form, filled in from the link's query (Report this, Contact support)."""
        params = self.router.url.query_parameters
        field = lambda key: bounded(params.get(key, ""), MAX_FIELD_INPUT).strip()  # noqa: E731
        self.subject = bounded(params.get("subject", ""), MAX_SUBJECT_INPUT)
        self.tool, self.model = field("tool"), field("model")
        self.reported_code, self.request_id = field("error_code"), field("request_id")
        self.generation_id = field("generation_id")
        self.time_utc = field("time") or f"{utcnow():%Y-%m-%d %H:%M}"
        self._project_ref, self.project_name = field("project_id"), ""
        self.form_key = secrets.token_urlsafe(16)
        self._created_ticket_id = 0
        self.suggestions = []
        acting = await self._load()
        if acting is not None and self._project_ref:
            self.project_name = self._visible_project_name(acting)
            if not self.project_name:
                self._project_ref = ""
        if acting is not None and self.generation_id:
            self._fill_from_run(acting)
        if self.subject:
            self._suggest()

    def _visible_project_name(self, acting: Acting) -> str:
        try:
            project_id = browser_id(self._project_ref)
        except NotFound:
            return ""
        with db.new_session() as session:
            project = session.get(Project, project_id)
            if project is None or project.org_id != acting.org.id:
                return ""
            target = policy.target_for(session=session, org_id=acting.org.id, project_id=project.id)
            return project.name if policy.can(acting.actor, Action.project_view, target) else ""

    def _fill_from_run(self, acting: Acting) -> None:
        """Report this: what the run knows fills the fields the link left empty."""
        with db.new_session() as session:
            run = support_service.run_for_report(
                session=session,
                actor=acting.actor,
                org_id=acting.org.id,
                public_id=self.generation_id,
            )
        if run is None:
            return
        self.model = self.model or run.model_key
        self.tool = self.tool or (run.tool_key or "")
        self.reported_code = self.reported_code or (run.failure_code or "")
        self.request_id = self.request_id or (run.request_id or "")
        moment = run.finished_at or run.created_at
        if moment is not None and not self.router.url.query_parameters.get("time"):
            self.time_utc = f"{moment:%Y-%m-%d %H:%M}"
        if not self.subject:
            status = "failed" if run.status == "failed" else run.status
            self.subject = f"Run {run.public_id} {status}"[: support_service.MAX_SUBJECT_CHARS]

    def _suggest(self) -> None:
        with db.new_session() as session:
            hits = help_center.help_suggest(session=session, text_typed=self.subject)
        self.suggestions = hit_rows(hits)

    @rx.event
    def set_subject(self, value: Any):
        self.subject = bounded(value, MAX_SUBJECT_INPUT)
        self._suggest()

    @rx.event
    async def submit_ticket(self, form: dict):
        fields = form_fields(form)
        text = lambda key, limit: bounded(fields.get(key, ""), limit)  # noqa: E731
        project_id = None
        if self._project_ref:
            try:
                project_id = browser_id(self._project_ref)
            except NotFound:
                project_id = None
        ticket_fields = support_service.TicketFields(
            subject=text("subject", MAX_SUBJECT_INPUT),
            body=text("body", MAX_BODY_INPUT),
            project_id=project_id,
            tool_key=text("tool", MAX_FIELD_INPUT),
            model_key=text("model", MAX_FIELD_INPUT),
            occurred_at=text("time", MAX_FIELD_INPUT),
            error_code=text("error_code", MAX_FIELD_INPUT),
            request_id=text("request_id", MAX_FIELD_INPUT),
            generation_id=text("generation_id", MAX_FIELD_INPUT),
        )
        key = bounded(self.form_key, 40)
        ticket_id = await self._act(
            Action.org_view,
            lambda a: (
                support_service.ticket_create(
                    session=a.session,
                    actor=a.user,
                    org_id=a.org.id,
                    fields=ticket_fields,
                    idempotency_key=key,
                ).id
            ),
            success=lambda tid: (
                f"Ticket #{tid} was sent. We mailed you a copy; replies appear under My tickets."
            ),
        )
        if ticket_id is not None and ticket_id is not True:
            self._created_ticket_id = int(ticket_id)

    @rx.event
    async def open_ticket(self, ticket_id: Any):
        try:
            wanted = browser_id(ticket_id)
        except NotFound as error:
            self._clear_messages()
            self.error = error.message
            return
        if wanted not in {t.ticket_id for t in self.tickets}:
            self._clear_messages()
            self.error = "That ticket was not found. Reload the page."
            return
        self.open_ticket_id = wanted
        await self._load()

    @rx.event
    async def reply(self, form: dict):
        body = bounded(form_fields(form).get("body", ""), MAX_BODY_INPUT)
        ticket_id = self.open_ticket_id
        if not ticket_id:
            self._clear_messages()
            self.error = "Open one of your tickets first, then write your reply."
            return
        done = await self._act(
            Action.org_view,
            lambda a: support_service.ticket_customer_reply(
                session=a.session, actor=a.user, org_id=a.org.id, ticket_id=ticket_id, body=body
            ),
            success="Your reply was added. Support sees it in their queue.",
        )
        if done is not None:
            return rx.set_value("reply-body", "")

    @rx.event
    async def set_pref(self, kind: Any, enabled: Any):
        kind = bounded(kind, 40)
        on = enabled is True
        await self._act(
            Action.org_view,
            lambda a: notification_service.preference_set(
                session=a.session, user_id=a.user.id, kind=kind, enabled=on
            ),
            success="Saved.",
        )
