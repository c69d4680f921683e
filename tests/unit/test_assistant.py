"""Marketing Assistant service: messages under the daily cap, replies streamed into the row,
brand-kit context, give-back on early failure, stop / interrupted / continue, search, export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from core.clock import freeze, utcnow
from core.settings import reset_settings_cache
from models import AssistantMessage, CreditLedgerEntry, UsageEvent
from services import assistant
from services.brand_kits import BrandKitInput, brand_kit_save
from services.caps import Cap, DailyCapReached, cap_status
from services.errors import NotFound, PermissionDenied
from services.policy import actor_for
from services.providers.base import (
    CONTINUE_INSTRUCTION,
    ProviderError,
    ProviderErrorCode,
    ProviderResult,
)
from services.providers.local import LocalProvider
from tests.factories import add_member, make_org, make_projects, make_user


@pytest.fixture(autouse=True)
def fast_local_chat(monkeypatch):
    monkeypatch.setenv("LOCAL_CHAT_CHUNK_SECONDS", "0")
    reset_settings_cache()
    yield
    reset_settings_cache()


@pytest.fixture
def world(session):
    owner = make_user(session, "owner@example.com")
    org = make_org(session, owner)
    session.commit()
    return owner, org


def _chat(session, user, org, project_id=None):
    row = assistant.conversation_create(
        session=session, user=user, org_id=org.id, project_id=project_id, model_key="local-text"
    )
    session.commit()
    return row


def _send(session, user, org, chat, content="Write a launch post for our spring sale", key="k1"):
    accepted = assistant.message_send(
        session=session,
        user=user,
        org_id=org.id,
        public_id=chat.public_id,
        content=content,
        idempotency_key=key,
    )
    session.commit()
    return accepted


def _produce(session, reply_id):
    session.commit()  # SQLite: the test's transaction must not hold the write lock
    return assistant.reply_produce(reply_id)


class Recording:
    """A provider that records the messages it was sent and streams a fixed reply."""

    name = "recording"

    def __init__(self, reply="Our bargain offer is here.", fail_after=None):
        self.calls: list[list[dict]] = []
        self.reply = reply
        self.fail_after = fail_after

    def chat(self, *, model_id, messages, max_tokens=None, on_delta=None):
        self.calls.append(messages)
        for index, piece in enumerate(self.reply.split(" ")):
            if self.fail_after is not None and index >= self.fail_after:
                raise ProviderError(ProviderErrorCode.provider_error, "The provider failed.")
            on_delta(piece + " ")
        return ProviderResult(modality="text", units=42, text=self.reply, provider_units=42)


def test_a_message_takes_one_unit_and_the_reply_is_written_with_no_credits(session, world):
    owner, org = world
    chat = _chat(session, owner, org)
    accepted = _send(session, owner, org, chat)
    status = cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages)
    assert (status.used, status.allowed) == (1, 20)
    assert _produce(session, accepted.reply_id) == "done"
    session.expire_all()
    reply = session.get(AssistantMessage, accepted.reply_id)
    assert reply.status == "done" and "spring sale" in reply.content.casefold()
    assert reply.tokens > 0
    events = session.exec(select(UsageEvent).where(UsageEvent.source == "assistant")).all()
    assert [(e.millicredits, e.units > 0, e.outcome) for e in events] == [(0, True, "succeeded")]
    assert not session.exec(
        select(CreditLedgerEntry).where(
            CreditLedgerEntry.org_id == org.id, CreditLedgerEntry.memo.contains("ssistant")
        )
    ).all()
    detail = assistant.conversation_detail(
        session=session,
        actor=actor_for(session=session, user=owner, org_id=org.id),
        org_id=org.id,
        public_id=chat.public_id,
    )
    assert detail.summary.title == "Write a launch post for our spring sale"
    assert [m.role for m in detail.messages] == ["user", "assistant"]


def test_a_double_click_sends_once(session, world):
    owner, org = world
    chat = _chat(session, owner, org)
    first = _send(session, owner, org, chat, key="same")
    again = _send(session, owner, org, chat, key="same")
    assert first == again
    assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 1


def test_brand_kit_context_reaches_the_provider_and_an_avoided_term_is_flagged(
    session, world, monkeypatch
):
    owner, org = world
    brand_kit_save(
        session=session,
        user=owner,
        org_id=org.id,
        project_id=None,
        data=BrandKitInput(name="Acme voice", voice=["warm", "bold"], avoided_terms=["bargain"]),
    )
    session.commit()
    provider = Recording()
    monkeypatch.setattr(assistant, "provider_for", lambda model: provider)
    chat = _chat(session, owner, org)
    accepted = _send(session, owner, org, chat)
    _produce(session, accepted.reply_id)
    system = provider.calls[0][0]
    assert system["role"] == "system"
    assert "Acme voice" in system["content"] and "Never use these terms" in system["content"]
    assert provider.calls[0][-1] == {
        "role": "user",
        "content": "Write a launch post for our spring sale",
    }
    session.expire_all()
    reply = session.get(AssistantMessage, accepted.reply_id)
    assert reply.flagged_terms == ["bargain"]
    assert reply.brand_kit_label == "Acme voice (organization kit)"


def test_the_local_provider_answers_in_the_kits_voice(session, world):
    owner, org = world
    brand_kit_save(
        session=session,
        user=owner,
        org_id=org.id,
        project_id=None,
        data=BrandKitInput(name="Acme voice", voice=["warm"]),
    )
    session.commit()
    chat = _chat(session, owner, org)
    accepted = _send(session, owner, org, chat)
    _produce(session, accepted.reply_id)
    session.expire_all()
    assert (
        "warm voice of the Acme voice brand kit"
        in session.get(AssistantMessage, accepted.reply_id).content
    )


def test_a_reply_failing_before_its_first_token_gives_the_unit_back_once(
    session, world, monkeypatch
):
    owner, org = world
    monkeypatch.setattr(assistant, "provider_for", lambda model: Recording(fail_after=0))
    chat = _chat(session, owner, org)
    accepted = _send(session, owner, org, chat)
    assert _produce(session, accepted.reply_id) == "failed"
    assert _produce(session, accepted.reply_id) == ""  # a second producer does nothing
    session.expire_all()
    assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 0
    reply = session.get(AssistantMessage, accepted.reply_id)
    assert "did not count towards today's allowance" in reply.failure_reason


def test_a_reply_failing_after_text_keeps_the_text_and_the_unit(session, world, monkeypatch):
    owner, org = world
    monkeypatch.setattr(assistant, "PERSIST_EVERY_SECONDS", 0)
    monkeypatch.setattr(assistant, "provider_for", lambda model: Recording(fail_after=2))
    chat = _chat(session, owner, org)
    accepted = _send(session, owner, org, chat)
    assert _produce(session, accepted.reply_id) == "failed"
    session.expire_all()
    assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 1
    assert session.get(AssistantMessage, accepted.reply_id).content == "Our bargain "


def test_free_plan_cap_refuses_the_21st_message_with_plan_and_reset(session, world):
    owner, org = world
    freeze(datetime(2026, 11, 26, 20, 48, tzinfo=UTC))
    chat = _chat(session, owner, org)
    for index in range(20):
        accepted = _send(session, owner, org, chat, key=f"m{index}")
        _produce(session, accepted.reply_id)
    with pytest.raises(DailyCapReached) as refused:
        _send(session, owner, org, chat, key="m20")
    assert "20 of 20 Marketing Assistant messages used today on Free" in refused.value.message
    assert "resets at 00:00 UTC, in 3 h 12 min" in refused.value.message
    session.rollback()
    freeze(datetime(2026, 11, 27, 0, 0, 1, tzinfo=UTC))  # midnight UTC, not 24 h later
    _send(session, owner, org, chat, key="m21")


def test_viewer_reads_but_cannot_send(session, world):
    owner, org = world
    viewer = add_member(session, org, "viewer@example.com", "viewer")
    session.commit()
    chat = _chat(session, owner, org)
    with pytest.raises(PermissionDenied):
        _send(session, viewer, org, chat)
    with pytest.raises(PermissionDenied):
        _chat(session, viewer, org)
    listed = assistant.conversations_list(
        session=session, actor=actor_for(session=session, user=viewer, org_id=org.id), org_id=org.id
    )
    assert [c.public_id for c in listed] == [chat.public_id]


def test_a_scoped_editor_sees_only_approved_projects_conversations(session, world):
    owner, org = world
    mine, other = make_projects(session, org, 2)
    scoped = add_member(session, org, "scoped@example.com", "editor", project_ids=[mine.id])
    session.commit()
    visible = _chat(session, owner, org, project_id=mine.id)
    hidden = _chat(session, owner, org, project_id=other.id)
    org_wide = _chat(session, owner, org)
    actor = actor_for(session=session, user=scoped, org_id=org.id)
    listed = assistant.conversations_list(session=session, actor=actor, org_id=org.id)
    assert [c.public_id for c in listed] == [visible.public_id]
    for chat in (hidden, org_wide):
        with pytest.raises(NotFound):
            assistant.conversation_detail(
                session=session, actor=actor, org_id=org.id, public_id=chat.public_id
            )
        with pytest.raises(NotFound):
            _send(session, scoped, org, chat)


def test_search_finds_old_conversations_by_message_text_and_title(session, world):
    owner, org = world
    other_owner = make_user(session, "other@example.com")
    other_org = make_org(session, other_owner, "Other Co")
    session.commit()
    old = _chat(session, owner, org)
    _send(session, owner, org, old, content="Ideas for the autumn newsletter", key="a")
    renamed = _chat(session, owner, org)
    assistant.conversation_rename(
        session=session,
        user=owner,
        org_id=org.id,
        public_id=renamed.public_id,
        title="Webinar follow-up",
    )
    session.commit()
    foreign = _chat(session, other_owner, other_org)
    _send(session, other_owner, other_org, foreign, content="autumn newsletter", key="b")
    actor = actor_for(session=session, user=owner, org_id=org.id)

    def found(query):
        return [
            c.public_id
            for c in assistant.conversations_list(
                session=session, actor=actor, org_id=org.id, query=query
            )
        ]

    assert found("autumn") == [old.public_id]
    assert found("newslet") == [old.public_id]  # a prefix matches
    assert found("webinar") == [renamed.public_id]
    assert found('"; DROP TABLE x; --') == []
    assert found("nothing-like-this") == []


def test_stop_keeps_the_text_so_far(session, world, monkeypatch):
    owner, org = world
    monkeypatch.setattr(assistant, "PERSIST_EVERY_SECONDS", 0)
    chat = _chat(session, owner, org)
    accepted = _send(session, owner, org, chat)
    assistant.reply_stop(session=session, user=owner, org_id=org.id, message_id=accepted.reply_id)
    session.commit()
    assert _produce(session, accepted.reply_id) == "stopped"
    session.expire_all()
    reply = session.get(AssistantMessage, accepted.reply_id)
    assert reply.status == "stopped" and reply.content  # the first piece was written


def test_a_reply_whose_producer_died_is_interrupted_and_continues_once(session, world):
    owner, org = world
    chat = _chat(session, owner, org)
    accepted = _send(session, owner, org, chat)
    reply = session.get(AssistantMessage, accepted.reply_id)
    reply.content = "Half a reply"
    reply.heartbeat_at = utcnow() - timedelta(seconds=assistant.STALE_AFTER_SECONDS + 5)
    session.add(reply)
    session.commit()
    view = assistant.reply_watch(session=session, org_id=org.id, message_id=reply.id)
    assert view.status == "interrupted"
    assert assistant.reply_claim_continue(
        session=session, user=owner, org_id=org.id, message_id=reply.id
    )
    session.commit()
    with pytest.raises(Exception, match="not interrupted"):
        assistant.reply_claim_continue(
            session=session, user=owner, org_id=org.id, message_id=reply.id
        )
    session.rollback()
    assert _produce(session, reply.id) == "done"
    session.expire_all()
    continued = session.get(AssistantMessage, reply.id)
    assert continued.content.startswith("Half a reply") and len(continued.content) > 20


def test_export_is_markdown_of_the_conversation(session, world):
    owner, org = world
    chat = _chat(session, owner, org)
    accepted = _send(session, owner, org, chat)
    _produce(session, accepted.reply_id)
    name, body = assistant.conversation_export_markdown(
        session=session,
        actor=actor_for(session=session, user=owner, org_id=org.id),
        org_id=org.id,
        public_id=chat.public_id,
    )
    assert name == "write-a-launch-post-for-our-spring-sale.md"
    assert body.startswith("# Write a launch post for our spring sale")
    assert "## You" in body and "## Marketing Assistant" in body


def test_local_provider_chat_streams_deterministic_pieces():
    pieces = []
    messages = [{"role": "user", "content": "Hello there"}]
    result = LocalProvider().chat(model_id="m", messages=messages, on_delta=pieces.append)
    assert "".join(pieces) == result.text
    assert len(pieces) > 3
    assert LocalProvider().chat(model_id="m", messages=messages).text == result.text


def _sweep(session):
    session.commit()  # SQLite: the test's transaction must not hold the write lock
    return assistant.replies_sweep_stale()


def _go_stale(session, reply_id, content):
    """The producer of `reply_id` went away after writing `content`."""
    reply = session.get(AssistantMessage, reply_id)
    reply.content = content
    reply.heartbeat_at = utcnow() - timedelta(seconds=assistant.STALE_AFTER_SECONDS + 5)
    session.add(reply)
    session.commit()


def test_the_sweep_marks_stale_replies_interrupted_and_gives_back_a_unit_once(session, world):
    owner, org = world
    chat_a, chat_b, chat_c = (_chat(session, owner, org) for _ in range(3))
    with_text = _send(session, owner, org, chat_a, key="a")
    no_text = _send(session, owner, org, chat_b, key="b")
    alive = _send(session, owner, org, chat_c, key="c")
    _go_stale(session, with_text.reply_id, "Half a reply")
    _go_stale(session, no_text.reply_id, "")
    assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 3

    first = _sweep(session)
    again = _sweep(session)  # a second scheduler, or the next run

    assert (first.interrupted, first.failed, first.released, first.errors) == (1, 1, 1, 0)
    assert (again.items, again.released) == (0, 0)
    session.expire_all()
    assert session.get(AssistantMessage, with_text.reply_id).status == "interrupted"
    failed = session.get(AssistantMessage, no_text.reply_id)
    assert failed.status == "failed" and "did not count" in failed.failure_reason
    assert session.get(AssistantMessage, alive.reply_id).status == "streaming"
    assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 2
    # A producer that comes back late cannot write, nor give the unit back a second time.
    assert _produce(session, no_text.reply_id) == ""
    session.expire_all()
    assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 2
    # The swept reply is offered Continue, and continues once.
    view = assistant.reply_watch(session=session, org_id=org.id, message_id=with_text.reply_id)
    assert view.status == "interrupted"
    assert assistant.reply_claim_continue(
        session=session, user=owner, org_id=org.id, message_id=with_text.reply_id
    )
    session.commit()
    assert _sweep(session).items == 0  # claimed: fresh heartbeat
    with pytest.raises(Exception, match="not interrupted"):
        assistant.reply_claim_continue(
            session=session, user=owner, org_id=org.id, message_id=with_text.reply_id
        )
    session.rollback()


def test_continue_sends_the_partial_reply_and_asks_to_go_on(session, world, monkeypatch):
    owner, org = world
    recording = Recording(reply="rest of it.")
    monkeypatch.setattr(assistant, "provider_for", lambda model: recording)
    chat = _chat(session, owner, org)
    accepted = _send(session, owner, org, chat, content="Write a tagline")
    _go_stale(session, accepted.reply_id, "Fresh flowers, ")
    _sweep(session)
    assistant.reply_claim_continue(
        session=session, user=owner, org_id=org.id, message_id=accepted.reply_id
    )
    assert _produce(session, accepted.reply_id) == "done"
    turns = recording.calls[-1]
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    assert turns[1]["content"] == "Write a tagline"
    assert turns[2]["content"] == "Fresh flowers, "
    assert turns[3]["content"] == CONTINUE_INSTRUCTION
    session.expire_all()
    assert session.get(AssistantMessage, accepted.reply_id).content == "Fresh flowers, rest of it. "


def test_the_local_provider_continues_the_same_draft(session, world, monkeypatch):
    owner, org = world
    monkeypatch.setattr(assistant, "PERSIST_EVERY_SECONDS", 0)
    chat = _chat(session, owner, org)
    whole = _send(session, owner, org, chat, key="whole")
    assert _produce(session, whole.reply_id) == "done"
    session.expire_all()
    full = session.get(AssistantMessage, whole.reply_id).content
    # The same question again, cut off a third of the way in (mid-word), then continued.
    cut = _send(session, owner, org, _chat(session, owner, org), key="cut")
    _go_stale(session, cut.reply_id, full[: len(full) // 3])
    assistant.reply_claim_continue(
        session=session, user=owner, org_id=org.id, message_id=cut.reply_id
    )
    assert _produce(session, cut.reply_id) == "done"
    session.expire_all()
    continued = session.get(AssistantMessage, cut.reply_id).content
    assert continued == full  # not a fresh draft appended to the partial one
    assert continued.count("Here is a draft for") == 1


def test_local_continuation_of_a_partial_text_it_did_not_write():
    question = [{"role": "user", "content": "Ideas for a bakery launch"}]
    draft = LocalProvider().chat(model_id="m", messages=question).text
    foreign_start = "Sure! " + draft[:40]
    turns = [
        *question,
        {"role": "assistant", "content": foreign_start},
        {"role": "user", "content": CONTINUE_INSTRUCTION},
    ]
    rest = LocalProvider().chat(model_id="m", messages=turns).text
    assert foreign_start + rest == "Sure! " + draft
