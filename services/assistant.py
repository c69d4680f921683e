"""Marketing Assistant: conversations, messages under the daily cap, streamed replies, search.

Invariants:
- A message is accepted together with its daily-cap unit (`cap_take` in the same transaction
  as the user message row and its `streaming` reply placeholder): either all three land or none.
- Assistant messages are included in the plan and cost no credits: the daily message cap
  governs them. Each finished reply records a usage event with source ``assistant`` (tokens and
  provider units) and 0 millicredits, so the credit ledger has no entries for the Assistant.
- A reply that fails before its first token gives its cap unit back, exactly once
  (`cap_release` is keyed by the user message's cap key).
- The producer (`reply_produce`, on a thread of the process that accepted the message) writes
  the text so far and a heartbeat at most every `PERSIST_EVERY_SECONDS`; every write is a
  conditional update on `status = 'streaming'`, so a stopped, finished or taken-over reply is
  never written by a stale producer. A `streaming` reply whose heartbeat is older than
  `STALE_AFTER_SECONDS` is shown as interrupted, and the `assistant_replies_sweep` job stores
  it as `interrupted` (or, with no text yet, `failed` with its cap unit given back) with a
  conditional update, so two schedulers at once change each reply once. Continue claims an
  interrupted reply with a conditional update, so two clicks (or two processes) continue it
  once; the provider then gets the conversation, the partial reply as the assistant's turn and
  `CONTINUE_INSTRUCTION`, and the reply grows from where it stopped.
- Conversations in a project are visible only to people who may see the project (a scoped
  editor's other projects are "not found"); viewers read but cannot send.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, text, update
from sqlmodel import Session, col, select

from core import db
from core.clock import as_utc, utcnow
from models import AssistantConversation, AssistantMessage, BrandKit, Project, UsageEvent, User
from services import models_registry as registry
from services import policy
from services.brand_kits import (
    brand_kit_avoided_terms,
    brand_kit_context,
    brand_kit_for,
    brand_kit_label,
)
from services.caps import Cap, cap_release, cap_take
from services.error_codes import Code
from services.errors import Conflict, NotFound, ValidationFailed, error_with_code
from services.policy import Action
from services.providers.base import CONTINUE_INSTRUCTION, ChatMessage, ProviderError
from services.providers.factory import provider_for

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4000
MAX_TITLE_CHARS = 120
MAX_QUERY_CHARS = 200
HISTORY_TURNS = 20  # earlier messages sent with each new one
LIST_LIMIT = 50
PERSIST_EVERY_SECONDS = 0.5
HEARTBEAT_EVERY_SECONDS = 5.0
STALE_AFTER_SECONDS = 20.0
DEFAULT_TITLE = "New conversation"
REPLY_MAX_TOKENS = 1200

SYSTEM_PROMPT = (
    "You are the Marketing Assistant of Creative Studio: a concise, practical marketing "
    "copywriter and strategist. Answer in Markdown."
)

STREAMING, DONE, FAILED, STOPPED, INTERRUPTED = (
    "streaming",
    "done",
    "failed",
    "stopped",
    "interrupted",
)

CONVERSATION_NOT_FOUND = (
    "This conversation does not exist or you do not have access to it. Pick one from the list."
)
NO_CREDITS_NOTE = (
    "Assistant messages are included in your plan and cost no credits; the daily message "
    "allowance applies."
)


# --- read models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationSummary:
    public_id: str
    title: str
    project_id: int | None
    project_name: str
    model_key: str
    updated_at: datetime
    archived: bool


@dataclass(frozen=True)
class MessageView:
    id: int
    role: str
    content: str
    status: str  # done | streaming | failed | stopped | interrupted
    brand_kit_label: str
    flagged_terms: tuple[str, ...]
    failure_reason: str
    created_at: datetime
    tokens: int


@dataclass(frozen=True)
class ConversationDetail:
    summary: ConversationSummary
    brand_kit_label: str
    messages: list[MessageView] = field(default_factory=list)


# --- helpers ----------------------------------------------------------------------------------


def _new_public_id() -> str:
    return "chat_" + secrets.token_urlsafe(12)


def _clean_text(value: object, *, limit: int, what: str) -> str:
    textual = "" if value is None else str(value)
    textual = "".join(ch for ch in textual if ch in "\n\t" or ord(ch) >= 32)
    textual = textual.strip()
    if not textual:
        raise ValidationFailed(f"Write a {what} first.", field=what)
    if len(textual) > limit:
        raise ValidationFailed(
            f"The {what} is {len(textual)} characters; the limit is {limit}. Shorten it.",
            field=what,
        )
    return textual


def _target(session: Session, org_id: int, project_id: int | None) -> policy.Target:
    return policy.target_for(session=session, org_id=org_id, project_id=project_id)


def _not_found() -> NotFound:
    return error_with_code(Code.conversation_not_found, CONVERSATION_NOT_FOUND, base=NotFound)


def _visible(
    session: Session, actor: policy.Actor, org_id: int, public_id: str
) -> AssistantConversation:
    """The conversation if the actor may read it; else "not found" (existence never leaks)."""
    if not isinstance(public_id, str) or not public_id.startswith("chat_") or len(public_id) > 40:
        raise _not_found()
    row = session.exec(
        select(AssistantConversation).where(
            AssistantConversation.public_id == public_id, AssistantConversation.org_id == org_id
        )
    ).first()
    if row is None:
        raise _not_found()
    if not policy.can(actor, Action.project_view, _target(session, org_id, row.project_id)):
        raise _not_found()
    if actor.project_scoped and row.project_id is None and not actor.is_operator:
        raise _not_found()
    return row


def _project_name(session: Session, project_id: int | None) -> str:
    if project_id is None:
        return "Whole organization"
    project = session.get(Project, project_id)
    return project.name if project is not None else "Removed project"


def _summary(session: Session, row: AssistantConversation) -> ConversationSummary:
    return ConversationSummary(
        public_id=row.public_id,
        title=row.title,
        project_id=row.project_id,
        project_name=_project_name(session, row.project_id),
        model_key=row.model_key,
        updated_at=as_utc(row.updated_at),
        archived=row.archived_at is not None,
    )


def is_stale(message: AssistantMessage, now: datetime | None = None) -> bool:
    """A streaming reply whose producer has not written for `STALE_AFTER_SECONDS`."""
    if message.status != STREAMING:
        return False
    beat = message.heartbeat_at or message.created_at
    return (as_utc(now or utcnow()) - as_utc(beat)).total_seconds() > STALE_AFTER_SECONDS


def shown_status(message: AssistantMessage, now: datetime | None = None) -> str:
    return INTERRUPTED if is_stale(message, now) else message.status


def _view(message: AssistantMessage, now: datetime | None = None) -> MessageView:
    return MessageView(
        id=message.id or 0,
        role=message.role,
        content=message.content or "",
        status=shown_status(message, now),
        brand_kit_label=message.brand_kit_label or "",
        flagged_terms=tuple(message.flagged_terms or ()),
        failure_reason=message.failure_reason or "",
        created_at=as_utc(message.created_at),
        tokens=message.tokens or 0,
    )


def text_models(*, session: Session, org_id: int) -> list[registry.ModelAvailability]:
    """Text models of the registry as this organization may use them (locks included)."""
    return [
        m for m in registry.models_for_org(session=session, org_id=org_id) if m.modality == "text"
    ]


def _usable_text_model(session: Session, org_id: int, model_key: str) -> str:
    models = {m.key: m for m in text_models(session=session, org_id=org_id)}
    model = models.get(model_key)
    if model is None:
        raise error_with_code(
            Code.model_not_found,
            "Pick one of the text models in the list.",
            base=NotFound,
        )
    if not model.usable:
        raise error_with_code(
            Code.model_not_available,
            model.reason or f"{model.display_name} is not available on your plan.",
            base=ValidationFailed,
        )
    return model.key


def default_model_key(*, session: Session, org_id: int) -> str:
    usable = [m for m in text_models(session=session, org_id=org_id) if m.usable]
    return usable[0].key if usable else ""


# --- conversations ----------------------------------------------------------------------------


def conversation_create(
    *,
    session: Session,
    user: User,
    org_id: int,
    project_id: int | None,
    model_key: str,
    title: str = "",
) -> AssistantConversation:
    """Start a conversation (editors, in a project they may work in). Flushes; caller commits.

    Raises:
        PermissionDenied / NotFound: a viewer, or a project outside the person's scope.
        ValidationFailed: a model that is locked or unavailable.
    """
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    policy.require(actor, Action.tool_run, _target(session, org_id, project_id))
    if actor.project_scoped and project_id is None and not actor.is_operator:
        raise error_with_code(
            Code.project_required,
            "Pick one of your projects first: your role works in selected projects only.",
            base=ValidationFailed,
        )
    key = _usable_text_model(session, org_id, model_key)
    kit = brand_kit_for(session=session, org_id=org_id, project_id=project_id)
    now = utcnow()
    row = AssistantConversation(
        public_id=_new_public_id(),
        org_id=org_id,
        project_id=project_id,
        user_id=user.id,
        title=_clean_text(title, limit=MAX_TITLE_CHARS, what="title") if title else DEFAULT_TITLE,
        model_key=key,
        brand_kit_id=kit.id if kit else None,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _search_ids(session: Session, org_id: int, query: str) -> set[str]:
    """Public ids of the organization's conversations whose title or messages match."""
    terms = re.findall(r"\w+", query.casefold())[:8]
    if not terms:
        return set()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        tsquery = " & ".join(f"{term}:*" for term in terms)
        statement = text(
            "SELECT conversation_id FROM assistant_messages WHERE org_id = :org AND "
            "to_tsvector('simple', content) @@ to_tsquery('simple', :q) "
            "UNION SELECT public_id FROM assistant_conversations WHERE org_id = :org AND "
            "to_tsvector('simple', title) @@ to_tsquery('simple', :q)"
        )
        params = {"org": org_id, "q": tsquery}
    else:
        match = " ".join('"' + term.replace('"', '""') + '"*' for term in terms)
        statement = text(
            "SELECT m.conversation_id FROM assistant_messages_fts f "
            "JOIN assistant_messages m ON m.id = f.rowid "
            "WHERE assistant_messages_fts MATCH :q AND m.org_id = :org "
            "UNION SELECT c.public_id FROM assistant_conversations_fts f "
            "JOIN assistant_conversations c ON c.id = f.rowid "
            "WHERE assistant_conversations_fts MATCH :q AND c.org_id = :org"
        )
        params = {"org": org_id, "q": match}
    return {row[0] for row in session.execute(statement, params)}


def conversations_list(
    *,
    session: Session,
    actor: policy.Actor,
    org_id: int,
    query: str = "",
    archived: bool = False,
    limit: int = LIST_LIMIT,
) -> list[ConversationSummary]:
    """The conversations the actor may read, newest first; `query` searches titles and text."""
    policy.require(actor, Action.org_view, _target(session, org_id, None))
    statement = select(AssistantConversation).where(AssistantConversation.org_id == org_id)
    statement = statement.where(
        col(AssistantConversation.archived_at).is_not(None)
        if archived
        else col(AssistantConversation.archived_at).is_(None)
    )
    if actor.project_scoped and not actor.is_operator:
        if not actor.project_ids:
            return []
        statement = statement.where(
            col(AssistantConversation.project_id).in_(sorted(actor.project_ids))
        )
    query = (query or "")[:MAX_QUERY_CHARS].strip()
    if query:
        ids = _search_ids(session, org_id, query)
        if not ids:
            return []
        statement = statement.where(col(AssistantConversation.public_id).in_(sorted(ids)))
    rows = session.exec(
        statement.order_by(
            col(AssistantConversation.updated_at).desc(), col(AssistantConversation.id).desc()
        ).limit(limit)
    ).all()
    return [_summary(session, row) for row in rows]


def conversation_detail(
    *, session: Session, actor: policy.Actor, org_id: int, public_id: str
) -> ConversationDetail:
    row = _visible(session, actor, org_id, public_id)
    messages = session.exec(
        select(AssistantMessage)
        .where(AssistantMessage.org_id == org_id, AssistantMessage.conversation_id == row.public_id)
        .order_by(col(AssistantMessage.created_at), col(AssistantMessage.id))
    ).all()
    kit = session.get(BrandKit, row.brand_kit_id) if row.brand_kit_id else None
    if kit is None:
        kit = brand_kit_for(session=session, org_id=org_id, project_id=row.project_id)
    now = utcnow()
    return ConversationDetail(
        summary=_summary(session, row),
        brand_kit_label=brand_kit_label(kit),
        messages=[_view(m, now) for m in messages],
    )


def _editable(session: Session, user: User, org_id: int, public_id: str) -> AssistantConversation:
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    row = _visible(session, actor, org_id, public_id)
    policy.require(actor, Action.tool_run, _target(session, org_id, row.project_id))
    return row


def conversation_rename(
    *, session: Session, user: User, org_id: int, public_id: str, title: str
) -> AssistantConversation:
    row = _editable(session, user, org_id, public_id)
    row.title = _clean_text(title, limit=MAX_TITLE_CHARS, what="title")
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def conversation_archive(
    *, session: Session, user: User, org_id: int, public_id: str, archived: bool = True
) -> AssistantConversation:
    row = _editable(session, user, org_id, public_id)
    row.archived_at = utcnow() if archived else None
    session.add(row)
    session.flush()
    return row


def conversation_export_markdown(
    *, session: Session, actor: policy.Actor, org_id: int, public_id: str
) -> tuple[str, str]:
    """(file name, Markdown) of the conversation, for download."""
    detail = conversation_detail(session=session, actor=actor, org_id=org_id, public_id=public_id)
    summary = detail.summary
    lines = [
        f"# {summary.title}",
        "",
        f"- Project: {summary.project_name}",
        f"- Model: {summary.model_key}",
        f"- Brand kit: {detail.brand_kit_label}",
        f"- Exported: {utcnow():%Y-%m-%d %H:%M} UTC",
        "",
    ]
    for message in detail.messages:
        who = "You" if message.role == "user" else "Marketing Assistant"
        lines += [f"## {who} · {message.created_at:%Y-%m-%d %H:%M} UTC", "", message.content, ""]
        if message.status not in (DONE, STREAMING) and message.role == "assistant":
            lines += [f"_(reply {message.status})_", ""]
    slug = re.sub(r"[^a-z0-9]+", "-", summary.title.casefold()).strip("-")[:60] or "conversation"
    return f"{slug}.md", "\n".join(lines)


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    user_message_id: int
    reply_id: int
    conversation_id: str


def message_send(
    *,
    session: Session,
    user: User,
    org_id: int,
    public_id: str,
    content: str,
    idempotency_key: str,
) -> Accepted:
    """Accept a message: take today's cap unit, store it and a `streaming` reply placeholder.

    Flushes; the caller commits, then starts the producer (`reply_start`). A second call with
    the same key (double click) returns the first acceptance and takes nothing more.

    Raises:
        DailyCapReached: today's messages are used up (names plan, used, allowed, reset).
        PermissionDenied: a viewer, or execution locked by the subscription.
        Conflict: a reply is still being written in this conversation.
        ValidationFailed: an empty or over-long message.
    """
    row = _editable(session, user, org_id, public_id)
    cap_key = f"assistant:{org_id}:{idempotency_key}"[:160]
    earlier = session.exec(
        select(AssistantMessage).where(AssistantMessage.cap_key == cap_key)
    ).first()
    if earlier is not None:
        reply = session.exec(
            select(AssistantMessage)
            .where(
                AssistantMessage.conversation_id == earlier.conversation_id,
                AssistantMessage.role == "assistant",
                col(AssistantMessage.id) > earlier.id,
            )
            .order_by(col(AssistantMessage.id))
        ).first()
        return Accepted(earlier.id, reply.id if reply else 0, earlier.conversation_id)
    body = _clean_text(content, limit=MAX_MESSAGE_CHARS, what="message")
    # One message at a time per conversation: concurrent sends queue on the conversation row.
    session.exec(
        select(AssistantConversation.id).where(AssistantConversation.id == row.id).with_for_update()
    ).first()
    busy = session.exec(
        select(AssistantMessage).where(
            AssistantMessage.conversation_id == row.public_id,
            AssistantMessage.status == STREAMING,
        )
    ).all()
    if any(not is_stale(m) for m in busy):
        raise error_with_code(
            Code.reply_in_progress,
            "The Assistant is still writing its reply. Wait for it to finish, or press Stop.",
            base=Conflict,
        )
    cap_take(
        session=session,
        org_id=org_id,
        cap=Cap.assistant_messages,
        idempotency_key=cap_key,
        user_id=user.id,
    )
    kit = brand_kit_for(session=session, org_id=org_id, project_id=row.project_id)
    now = utcnow()
    question = AssistantMessage(
        org_id=org_id,
        user_id=user.id,
        conversation_id=row.public_id,
        role="user",
        content=body,
        model_key=row.model_key,
        created_at=now,
        cap_key=cap_key,
    )
    session.add(question)
    session.flush()
    reply = AssistantMessage(
        org_id=org_id,
        user_id=user.id,
        conversation_id=row.public_id,
        role="assistant",
        content="",
        model_key=row.model_key,
        created_at=now + timedelta(microseconds=1),
        status=STREAMING,
        heartbeat_at=now,
        brand_kit_id=kit.id if kit else None,
        brand_kit_label=brand_kit_label(kit),
    )
    session.add(reply)
    if row.title == DEFAULT_TITLE:
        row.title = body.splitlines()[0][:80]
    row.updated_at = now
    row.brand_kit_id = kit.id if kit else None
    session.add(row)
    session.flush()
    return Accepted(question.id, reply.id, row.public_id)


def _reply_row(session: Session, user: User, org_id: int, message_id: int) -> AssistantMessage:
    message = session.get(AssistantMessage, message_id)
    if message is None or message.org_id != org_id or message.role != "assistant":
        raise _not_found()
    _editable(session, user, org_id, message.conversation_id)
    return message


def reply_stop(*, session: Session, user: User, org_id: int, message_id: int) -> bool:
    """Ask the producer to stop (it keeps the text so far). True if the reply was running."""
    message = _reply_row(session, user, org_id, message_id)
    if shown_status(message) == INTERRUPTED:
        # Conditional: a Continue claimed a moment ago (fresh heartbeat) is not overwritten.
        ended = session.execute(
            update(AssistantMessage)
            .where(col(AssistantMessage.id) == message.id, _interrupted_clause(utcnow()))
            .values(status=STOPPED, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if ended.rowcount:
            return True
    stopped = session.execute(
        update(AssistantMessage)
        .where(col(AssistantMessage.id) == message.id, col(AssistantMessage.status) == STREAMING)
        .values(stop_requested=True)
        .execution_options(synchronize_session=False)
    )
    return bool(stopped.rowcount)


def reply_claim_continue(*, session: Session, user: User, org_id: int, message_id: int) -> bool:
    """Claim an interrupted reply to continue it here (once, whoever clicks first).

    Raises:
        Conflict: the reply is not interrupted (still being written, or finished).
    """
    message = _reply_row(session, user, org_id, message_id)
    claimed = session.execute(
        update(AssistantMessage)
        .where(col(AssistantMessage.id) == message.id, _interrupted_clause(utcnow()))
        .values(status=STREAMING, heartbeat_at=utcnow(), stop_requested=False)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:
        raise error_with_code(
            Code.reply_not_interrupted,
            "This reply is not interrupted: it is still being written or has finished.",
            base=Conflict,
        )
    return True


def _stale_clause(now: datetime):
    """A `streaming` reply whose producer has not written for `STALE_AFTER_SECONDS`."""
    cutoff = as_utc(now) - timedelta(seconds=STALE_AFTER_SECONDS)
    return and_(
        col(AssistantMessage.status) == STREAMING,
        or_(
            col(AssistantMessage.heartbeat_at) < cutoff,
            and_(
                col(AssistantMessage.heartbeat_at).is_(None),
                col(AssistantMessage.created_at) < cutoff,
            ),
        ),
    )


def _interrupted_clause(now: datetime):
    """Interrupted: stored so by the sweep, or stale and not swept yet."""
    return or_(col(AssistantMessage.status) == INTERRUPTED, _stale_clause(now))


@dataclass
class RepliesSweepResult:
    """What one sweep changed (the job recorder reads `items` and `errors`)."""

    interrupted: int = 0
    failed: int = 0  # stale with no text yet: failed, cap unit given back
    released: int = 0  # cap units given back by this sweep
    errors: int = 0
    error_details: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        return self.interrupted + self.failed


SWEEP_BATCH = 200
SWEPT_BEFORE_FIRST_TOKEN = (
    "The reply stopped before it began (the server writing it went away). Your message did not "
    "count towards today's allowance. Send it again."
)


def replies_sweep_stale(
    *, now: datetime | None = None, batch_size: int = SWEEP_BATCH
) -> RepliesSweepResult:
    """Store stale `streaming` replies as `interrupted` (with text) or `failed` (without).

    Each reply changes in its own transaction with a conditional update (still streaming,
    still stale), so two sweeps at once, or a sweep racing a Continue, change it once. A reply
    failed here before its first token gives its message's cap unit back (`cap_release`, keyed
    by the message, so a producer that fails it too cannot give it back a second time).
    """
    now = as_utc(now or utcnow())
    result = RepliesSweepResult()
    with db.new_session() as session:
        candidates = session.exec(
            select(AssistantMessage.id)
            .where(_stale_clause(now))
            .order_by(col(AssistantMessage.id))
            .limit(batch_size)
        ).all()
    for reply_id in candidates:
        try:
            with db.session_scope() as session:
                _sweep_one(session, reply_id, now, result)
        except Exception as error:  # noqa: BLE001 - one bad row must not stop the sweep
            log.exception("assistant reply %s: sweep failed", reply_id)
            result.errors += 1
            result.error_details.append(f"reply {reply_id}: {type(error).__name__}")
    return result


def _sweep_one(session: Session, reply_id: int, now: datetime, result: RepliesSweepResult) -> None:
    interrupted = session.execute(
        update(AssistantMessage)
        .where(
            col(AssistantMessage.id) == reply_id,
            _stale_clause(now),
            col(AssistantMessage.content) != "",
        )
        .values(status=INTERRUPTED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if interrupted.rowcount:
        result.interrupted += 1
        return
    failed = session.execute(
        update(AssistantMessage)
        .where(
            col(AssistantMessage.id) == reply_id,
            _stale_clause(now),
            col(AssistantMessage.content) == "",
        )
        .values(status=FAILED, updated_at=now, failure_reason=SWEPT_BEFORE_FIRST_TOKEN)
        .returning(AssistantMessage.conversation_id)
    ).first()
    if failed is None:
        return  # written, finished or swept by someone else meanwhile
    result.failed += 1
    question = session.exec(
        select(AssistantMessage)
        .where(
            AssistantMessage.conversation_id == failed[0],
            AssistantMessage.role == "user",
            col(AssistantMessage.id) < reply_id,
        )
        .order_by(col(AssistantMessage.id).desc())
    ).first()
    if question is not None and question.cap_key:
        if cap_release(session=session, idempotency_key=question.cap_key, now=now):
            result.released += 1


def reply_watch(*, session: Session, org_id: int, message_id: int) -> MessageView | None:
    """The reply as stored now (for a page following it); None if it is not there."""
    session.expire_all()
    message = session.get(AssistantMessage, message_id)
    if message is None or message.org_id != org_id:
        return None
    return _view(message)


# --- producing a reply ------------------------------------------------------------------------


class _Stopped(Exception):
    pass


@dataclass
class _Plan:
    reply_id: int
    org_id: int
    project_id: int | None
    user_id: int | None
    model_key: str
    turns: list[ChatMessage]
    prefix: str  # text already written (a continued reply)
    cap_key: str | None


def _plan(session: Session, reply_id: int) -> _Plan | None:
    reply = session.get(AssistantMessage, reply_id)
    if reply is None or reply.status != STREAMING:
        return None
    conversation = session.exec(
        select(AssistantConversation).where(
            AssistantConversation.public_id == reply.conversation_id
        )
    ).first()
    if conversation is None:
        return None
    kit = session.get(BrandKit, reply.brand_kit_id) if reply.brand_kit_id else None
    system = SYSTEM_PROMPT
    context = brand_kit_context(kit)
    if context:
        system += "\n\n" + context
    earlier = session.exec(
        select(AssistantMessage)
        .where(
            AssistantMessage.conversation_id == reply.conversation_id,
            col(AssistantMessage.id) < reply.id,
        )
        .order_by(col(AssistantMessage.id).desc())
        .limit(HISTORY_TURNS)
    ).all()
    turns: list[ChatMessage] = [{"role": "system", "content": system}]
    for message in reversed(earlier):
        if message.role == "assistant" and (message.status == FAILED or not message.content):
            continue
        turns.append({"role": message.role, "content": message.content})
    prefix = reply.content or ""
    if prefix:
        turns.append({"role": "assistant", "content": prefix})
        turns.append({"role": "user", "content": CONTINUE_INSTRUCTION})
    question = next((m for m in earlier if m.role == "user"), None)
    return _Plan(
        reply_id=reply.id,
        org_id=reply.org_id,
        project_id=conversation.project_id,
        user_id=reply.user_id,
        model_key=conversation.model_key,
        turns=turns,
        prefix=prefix,
        cap_key=question.cap_key if question is not None else None,
    )


def _write(reply_id: int, **values) -> bool:
    """A conditional write to a reply still streaming; also reads whether Stop was pressed."""
    with db.session_scope() as session:
        result = session.execute(
            update(AssistantMessage)
            .where(col(AssistantMessage.id) == reply_id, col(AssistantMessage.status) == STREAMING)
            .values(**values)
            .returning(AssistantMessage.stop_requested)
        ).first()
    if result is None:
        raise _Stopped()
    return bool(result[0])


def reply_produce(reply_id: int) -> str:
    """Write the reply of `reply_id` (its own units of work); returns its final status.

    Runs on a thread of its own (`reply_start`); safe to call for a reply that is no longer
    streaming (it does nothing).
    """
    with db.session_scope() as session:
        plan = _plan(session, reply_id)
        if plan is None:
            return ""
        model = registry.model_get(session=session, key=plan.model_key)
        provider_model_id = model.provider_model_id
        try:
            adapter = provider_for(model)
        except ProviderError as error:
            adapter, setup_error = None, error
    state = {"text": plan.prefix, "written": plan.prefix, "last": time.monotonic()}
    beating = threading.Event()

    def heartbeat() -> None:
        while not beating.wait(HEARTBEAT_EVERY_SECONDS):
            try:
                if _write(reply_id, heartbeat_at=utcnow()):
                    return
            except _Stopped:
                return
            except Exception:  # noqa: BLE001 - a missed beat only risks "interrupted"
                log.warning("assistant reply %s: heartbeat failed", reply_id, exc_info=True)

    def on_delta(piece: str) -> None:
        state["text"] += piece
        now = time.monotonic()
        if now - state["last"] >= PERSIST_EVERY_SECONDS:
            state["last"] = now
            stop = _write(reply_id, content=state["text"], heartbeat_at=utcnow())
            state["written"] = state["text"]
            if stop:
                raise _Stopped()

    beat_thread = threading.Thread(target=heartbeat, name=f"assistant-beat-{reply_id}", daemon=True)
    beat_thread.start()
    failure: str | None = None
    result = None
    try:
        if adapter is None:
            raise setup_error
        result = adapter.chat(
            model_id=provider_model_id,
            messages=plan.turns,
            max_tokens=REPLY_MAX_TOKENS,
            on_delta=on_delta,
        )
        if result.text and not state["text"].endswith(result.text) and state["text"] == plan.prefix:
            state["text"] = plan.prefix + result.text  # a provider that did not stream
    except _Stopped:
        failure = None
    except ProviderError as error:
        failure = error.message
    except Exception as error:  # noqa: BLE001 - any provider bug fails the reply cleanly
        log.exception("assistant reply %s: provider crashed", reply_id)
        failure = f"The reply failed unexpectedly ({type(error).__name__})."
    finally:
        beating.set()
    return _finish(plan, state["text"], result, failure)


def _finish(plan: _Plan, content: str, result, failure: str | None) -> str:
    """Store the final text and status; usage event; give the cap unit back if nothing came."""
    now = utcnow()
    with db.session_scope() as session:
        reply = session.get(AssistantMessage, plan.reply_id, with_for_update=True)
        if reply is None or reply.status != STREAMING:
            return reply.status if reply is not None else ""
        got_text = bool(content.strip()) and content != plan.prefix
        if reply.stop_requested:
            status = STOPPED
        elif failure is not None:
            status = FAILED
        else:
            status = DONE
        kit = session.get(BrandKit, reply.brand_kit_id) if reply.brand_kit_id else None
        tokens = result.units if result is not None else 0
        reply.content = content
        reply.status = status
        reply.heartbeat_at = now
        reply.updated_at = now
        reply.tokens = (reply.tokens or 0) + tokens
        reply.flagged_terms = brand_kit_avoided_terms(kit, content)
        if status == FAILED:
            reply.failure_reason = (
                f"{failure} Your message did not count towards today's allowance."
                if not got_text and not plan.prefix
                else f"{failure} The text so far is kept."
            )[:500]
        session.add(reply)
        if status == FAILED and not got_text and not plan.prefix and plan.cap_key:
            cap_release(session=session, idempotency_key=plan.cap_key)
        session.add(
            UsageEvent(
                org_id=plan.org_id,
                project_id=plan.project_id,
                user_id=plan.user_id,
                source="assistant",
                model_key=plan.model_key,
                modality="text",
                units=tokens,
                millicredits=0,  # included in the plan: the daily cap governs the Assistant
                provider_units=result.provider_units if result is not None else None,
                outcome="succeeded" if status == DONE else status,
                occurred_at=now,
            )
        )
    return status


def reply_start(reply_id: int) -> threading.Thread:
    """Produce the reply on a thread of this process (after the accepting commit)."""
    thread = threading.Thread(
        target=_produce_logged, args=(reply_id,), name=f"assistant-reply-{reply_id}", daemon=True
    )
    thread.start()
    return thread


def _produce_logged(reply_id: int) -> None:
    try:
        reply_produce(reply_id)
    except Exception:  # noqa: BLE001 - the reply then shows as interrupted, with Continue
        log.exception("assistant reply %s could not be produced", reply_id)
