"""/org/<slug>/assistant: conversations, a streamed reply, history search, daily allowance.

Every public handler goes through the org-page skeleton (`OrgPageState._act` / `_load`), so who
acts is re-derived from the session cookie and the URL on every call. The reply is produced on
a thread of the backend (`services.assistant.reply_start`) and written to its row; this page
only follows the row (`follow`), so a reload mid-reply shows the text so far and keeps
following. Model output reaches `rx.markdown` as written, and the page renders it with raw
HTML turned off (`use_raw=False`, as the help center does), so `<img onerror=...>` shows as
text and code blocks show `<` as `<`. Models are chosen with Studio's picker: a locked one
opens the upgrade offer naming the plan that unlocks it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlencode

import reflex as rx

from core import db, routes
from services import assistant, form_submissions, policy
from services import models_registry as registry
from services import orgs as org_service
from services.caps import Cap, cap_status
from services.error_codes import Code
from services.errors import DomainError, NotFound, error_with_code
from state.model_choice import (
    ModelOption,
    UpgradeOffer,
    focus_model_row_script,
    model_option,
    upgrade_offer,
)
from state.org_page import Acting, OrgPageState, bounded, browser_id

Action = policy.Action

MAX_MESSAGE_INPUT = assistant.MAX_MESSAGE_CHARS + 1
MAX_TITLE_INPUT = assistant.MAX_TITLE_CHARS + 1
MAX_QUERY_INPUT = assistant.MAX_QUERY_CHARS
MAX_ID_INPUT = 40
FOLLOW_SECONDS = 0.4
STUDIO_PROMPT_CHARS = 2000

VIEWER_REASON = (
    "Viewers can read conversations but cannot send messages. Ask an owner or admin to make "
    "you an editor."
)
STATUS_LABELS = {
    "streaming": "Writing…",
    "done": "",
    "failed": "Failed",
    "stopped": "Stopped",
    "interrupted": "Interrupted",
}
MODEL_NOT_LISTED = "That model is not in the list. Pick one of the text models shown."


@dataclass
class ConversationRow:
    public_id: str
    title: str
    where: str  # "Spring launch · 26 Nov 14:03"
    active: bool


@dataclass
class MessageRow:
    id: int
    role: str
    markdown: str  # as written: the view renders it with raw HTML off (text, never elements)
    status: str
    status_label: str
    kit_line: str
    flagged: str  # "Uses avoided terms: bargain" or ""
    failure: str
    studio_href: str


@dataclass
class Choice:
    value: str
    label: str


class AssistantState(OrgPageState, rx.State):
    conversations: list[ConversationRow] = []
    query: str = ""
    searched: str = ""  # the query the list shows results for
    show_archived: bool = False

    active_id: str = ""
    active_title: str = ""
    active_where: str = ""
    active_kit: str = ""
    active_model: str = ""
    active_archived: bool = False
    messages: list[MessageRow] = []
    replying: bool = False  # the latest reply is still being written
    interrupted_id: int = 0  # a reply that can be continued (0 = none)
    _reply_id: int = 0  # the reply being followed

    can_send: bool = False
    can_start: bool = False  # may start a conversation (somewhere in the project list)
    send_reason: str = ""  # why the composer is not there
    cap_line: str = ""
    org_address: str = ""

    text_models: list[ModelOption] = []  # the picker: every text model, locked ones too
    upgrade_open: bool = False
    offer: UpgradeOffer = rx.field(default_factory=UpgradeOffer)
    project_choices: list[Choice] = []
    new_model: str = ""
    new_project: str = "org"

    renaming: bool = False

    _org_id: int = 0
    _active_project_id: int | None = None
    _following: bool = False

    @rx.var
    def billing_href(self) -> str:
        return routes.org_billing(self.org_address) if self.org_address else ""

    # --- the skeleton's hooks --------------------------------------------------------------

    def _view_action(self) -> policy.Action:
        return Action.org_view

    def _refresh(self, acting: Acting) -> None:
        session, org = acting.session, acting.org
        self._org_id = org.id
        self.org_address = org.slug
        self.cap_line = cap_status(
            session=session, org_id=org.id, cap=Cap.assistant_messages
        ).describe()
        self._refresh_choices(acting)
        self._refresh_list(acting)
        if self.active_id:
            try:
                self._refresh_active(acting)
            except DomainError:
                self._close_active()
        self._refresh_permissions(acting)

    def _refresh_choices(self, acting: Acting) -> None:
        models = assistant.text_models(session=acting.session, org_id=acting.org.id)
        self.text_models = [model_option(m, operator=acting.user.is_operator) for m in models]
        usable = [m.key for m in models if m.usable]
        if self.new_model not in usable:
            self.new_model = usable[0] if usable else ""
        projects = org_service.projects_visible(
            session=acting.session, actor=acting.actor, org_id=acting.org.id
        )
        choices = [] if acting.actor.project_scoped else [Choice("org", "Whole organization")]
        choices += [Choice(str(p.id), p.name) for p in projects]
        self.project_choices = choices
        self.can_start = any(
            acting.can(Action.tool_run, project_id=None if c.value == "org" else int(c.value))
            for c in choices
        )
        if self.new_project not in {c.value for c in choices}:
            self.new_project = choices[0].value if choices else ""

    def _refresh_list(self, acting: Acting) -> None:
        rows = assistant.conversations_list(
            session=acting.session,
            actor=acting.actor,
            org_id=acting.org.id,
            query=self.searched,
            archived=self.show_archived,
        )
        self.conversations = [
            ConversationRow(
                public_id=row.public_id,
                title=row.title,
                where=f"{row.project_name} · {row.updated_at:%d %b %H:%M} UTC",
                active=row.public_id == self.active_id,
            )
            for row in rows
        ]

    def _refresh_active(self, acting: Acting) -> None:
        detail = assistant.conversation_detail(
            session=acting.session,
            actor=acting.actor,
            org_id=acting.org.id,
            public_id=self.active_id,
        )
        summary = detail.summary
        self._active_project_id = summary.project_id
        self.active_title = summary.title
        self.active_where = summary.project_name
        self.active_kit = detail.brand_kit_label
        names = {m.key: m.name for m in self.text_models}
        self.active_model = names.get(summary.model_key, summary.model_key)
        self.active_archived = summary.archived
        self.messages = [self._row(m) for m in detail.messages]
        latest = detail.messages[-1] if detail.messages else None
        self.replying = latest is not None and latest.status == "streaming"
        self._reply_id = latest.id if self.replying else 0
        self.interrupted_id = (
            latest.id if latest is not None and latest.status == "interrupted" else 0
        )

    def _row(self, message: assistant.MessageView) -> MessageRow:
        studio = ""
        if message.role == "assistant" and message.content and self.org_address:
            # Creative Studio with the reply as its prompt (routes.org_studio_with_prompt's URL).
            prompt = urlencode({"prompt": message.content[:STUDIO_PROMPT_CHARS]})
            studio = f"{routes.org_home(self.org_address)}?{prompt}"
        return MessageRow(
            id=message.id,
            role=message.role,
            markdown=message.content,
            status=message.status,
            status_label=STATUS_LABELS.get(message.status, message.status),
            kit_line=f"Brand kit used: {message.brand_kit_label}"
            if message.role == "assistant" and message.brand_kit_label
            else "",
            flagged="Uses avoided terms: " + ", ".join(message.flagged_terms)
            if message.flagged_terms
            else "",
            failure=message.failure_reason,
            studio_href=studio,
        )

    def _refresh_permissions(self, acting: Acting) -> None:
        project_id = self._active_project_id if self.active_id else None
        if not acting.can(Action.tool_run, project_id=project_id):
            target = policy.target_for(
                session=acting.session, org_id=acting.org.id, project_id=project_id
            )
            decision = policy.can(acting.actor, Action.tool_run, target)
            self.can_send = False
            self.send_reason = VIEWER_REASON if acting.actor.role == "viewer" else decision.message
        elif self.active_archived:
            self.can_send, self.send_reason = (
                False,
                "This conversation is archived. Restore it to continue.",
            )
        else:
            self.can_send, self.send_reason = True, ""

    def _close_active(self) -> None:
        self.active_id = self.active_title = self.active_where = self.active_kit = ""
        self.messages = []
        self.replying = False
        self._reply_id = self.interrupted_id = 0
        self._active_project_id = None

    # --- events ----------------------------------------------------------------------------

    @rx.event
    async def load(self):
        wanted = bounded(self.router.url.query_parameters.get("c", ""), MAX_ID_INPUT)
        self.active_id = wanted
        self.renaming = False
        self.upgrade_open = False
        opened = await self._open()
        if opened.acting is None:
            return opened.elsewhere
        if wanted and not self.messages and self.active_title == "":
            self.error = assistant.CONVERSATION_NOT_FOUND
        if self.replying:
            return AssistantState.follow
        return None

    def _address(self, public_id: str = "") -> str:
        return routes.org_assistant(self.org_address, public_id)

    @rx.event
    async def open_conversation(self, public_id: str):
        return rx.redirect(self._address(bounded(public_id, MAX_ID_INPUT)))

    def _pick(self, acting: Acting, key: object) -> ModelOption:
        options = {m.key: m for m in self.text_models}
        model = options.get(key) if isinstance(key, str) else None
        if model is None:
            raise error_with_code(Code.model_not_found, MODEL_NOT_LISTED, base=NotFound)
        if model.state == registry.LOCKED:
            self.offer = upgrade_offer(
                session=acting.session,
                org_id=acting.org.id,
                org_slug=acting.org.slug,
                is_owner=acting.is_owner,
                model=model,
                options=self.text_models,
            )
            self.upgrade_open = True
        elif model.state == registry.AVAILABLE:
            self.new_model = model.key
        return model

    @rx.event
    async def pick_model(self, key: str):
        """A usable model is chosen for the next conversation; a locked one opens the upgrade
        offer naming the plan that unlocks it; a turned-off one says why."""
        model = await self._act(self._view_action(), lambda a: self._pick(a, key), refresh=False)
        if model is None or model.state in (registry.AVAILABLE, registry.LOCKED):
            return None
        self.error = model.note
        return rx.toast.warning(model.note)

    @rx.event
    def set_upgrade_open(self, value: bool):
        """Open or close the upgrade offer (only one a pick opened); on close, focus goes back
        to the locked model's row."""
        self.upgrade_open = bool(value) and bool(self.offer.model_key)
        if self.upgrade_open or not self.offer.model_key:
            return None
        return rx.call_script(focus_model_row_script(self.offer.model_key))

    @rx.event
    def set_new_project(self, value: str):
        self.new_project = bounded(value, 24)

    @rx.event
    def set_query(self, value: str):
        self.query = bounded(value, MAX_QUERY_INPUT)

    def _new_project_id(self) -> int | None:
        return None if self.new_project in ("", "org") else browser_id(self.new_project)

    @rx.event
    async def new_conversation(self):
        try:
            project_id = self._new_project_id()
        except DomainError as error:
            self.error = error.message
            return None
        row = await self._act(
            Action.tool_run,
            lambda a: (
                assistant.conversation_create(
                    session=a.session,
                    user=a.user,
                    org_id=a.org.id,
                    project_id=project_id,
                    model_key=self.new_model,
                ).public_id
            ),
            project_id=project_id,
            refresh=False,
        )
        if row is None:
            return None
        return rx.redirect(self._address(row))

    @rx.event
    async def search(self, form: dict | None = None):
        if isinstance(form, dict):
            self.query = bounded(form.get("query", ""), MAX_QUERY_INPUT)
        self.searched = self.query.strip()
        await self._act(self._view_action(), lambda a: None)

    @rx.event
    async def clear_search(self):
        self.query = self.searched = ""
        await self._act(self._view_action(), lambda a: None)

    @rx.event
    async def toggle_archived(self, value: bool):
        self.show_archived = bool(value)
        await self._act(self._view_action(), lambda a: None)

    @rx.event
    async def send(self, form: dict | None = None):
        """Send the composer's message; the reply then streams in (`follow`)."""
        form = form if isinstance(form, dict) else {}
        content = bounded(form.get("message", ""), MAX_MESSAGE_INPUT)
        if not self.active_id:
            self.error = "Start or open a conversation first."
            return None
        key = form_submissions.form_token_clean(form.get("form_token")) or self.form_token
        accepted = await self._act(
            Action.tool_run,
            lambda a: assistant.message_send(
                session=a.session,
                user=a.user,
                org_id=a.org.id,
                public_id=self.active_id,
                content=content,
                idempotency_key=key,
            ),
            project_id=self._active_project_id,
        )
        if accepted is None:
            return None
        assistant.reply_start(accepted.reply_id)
        self.form_token = form_submissions.form_token_new()
        return AssistantState.follow

    @rx.event(background=True)
    async def follow(self):
        """Follow the reply being written: re-read its row until it is no longer streaming."""
        async with self:
            if self._following or not self._reply_id:
                return None
            self._following = True
            reply_id, org_id = self._reply_id, self._org_id
        try:
            while True:
                await asyncio.sleep(FOLLOW_SECONDS)
                with db.new_session() as session:
                    view = assistant.reply_watch(
                        session=session, org_id=org_id, message_id=reply_id
                    )
                async with self:
                    if reply_id != self._reply_id or view is None:
                        return None
                    self.messages = [
                        self._row(view) if row.id == reply_id else row for row in self.messages
                    ]
                    if view.status != "streaming":
                        self.replying = False
                        self._reply_id = 0
                        self.interrupted_id = reply_id if view.status == "interrupted" else 0
                        with db.new_session() as session:
                            self.cap_line = cap_status(
                                session=session, org_id=org_id, cap=Cap.assistant_messages
                            ).describe()
                        if view.status == "failed":
                            return rx.toast.error(view.failure_reason or "The reply failed.")
                        return None
        finally:
            async with self:
                self._following = False

    @rx.event
    async def stop(self):
        reply_id = self._reply_id or self.interrupted_id
        if not reply_id:
            return None
        await self._act(
            Action.tool_run,
            lambda a: assistant.reply_stop(
                session=a.session, user=a.user, org_id=a.org.id, message_id=reply_id
            ),
            project_id=self._active_project_id,
            success="Stopped. The text so far is kept.",
        )

    @rx.event
    async def continue_reply(self):
        reply_id = self.interrupted_id
        if not reply_id:
            return None
        claimed = await self._act(
            Action.tool_run,
            lambda a: assistant.reply_claim_continue(
                session=a.session, user=a.user, org_id=a.org.id, message_id=reply_id
            ),
            project_id=self._active_project_id,
        )
        if claimed is None:
            return None
        assistant.reply_start(reply_id)
        self.replying, self._reply_id, self.interrupted_id = True, reply_id, 0
        return AssistantState.follow

    @rx.event
    def start_rename(self):
        self.renaming = True

    @rx.event
    def cancel_rename(self):
        self.renaming = False

    @rx.event
    async def rename(self, form: dict | None = None):
        title = bounded(
            (form or {}).get("title", "") if isinstance(form, dict) else "", MAX_TITLE_INPUT
        )
        done = await self._act(
            Action.tool_run,
            lambda a: (
                assistant.conversation_rename(
                    session=a.session,
                    user=a.user,
                    org_id=a.org.id,
                    public_id=self.active_id,
                    title=title,
                ).title
            ),
            project_id=self._active_project_id,
            success=lambda new: f"Renamed to “{new}”.",
        )
        if done is not None:
            self.renaming = False

    @rx.event
    async def archive(self, archived: bool = True):
        archived = bool(archived) if isinstance(archived, bool) else True
        await self._act(
            Action.tool_run,
            lambda a: assistant.conversation_archive(
                session=a.session,
                user=a.user,
                org_id=a.org.id,
                public_id=self.active_id,
                archived=archived,
            ),
            project_id=self._active_project_id,
            success="Archived. Find it under Show archived." if archived else "Restored.",
        )

    @rx.event
    async def export(self):
        exported = await self._act(
            self._view_action(),
            lambda a: assistant.conversation_export_markdown(
                session=a.session, actor=a.actor, org_id=a.org.id, public_id=self.active_id
            ),
            refresh=False,
        )
        if not exported:
            return None
        name, body = exported
        return rx.download(data=body, filename=name)
