"""Marketing Assistant on PostgreSQL: concurrent sends at the cap, search through the GIN
index, and a reply failing before its first token giving its unit back exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from core.clock import freeze
from core.settings import reset_settings_cache
from models import AssistantMessage
from services import assistant
from services.caps import Cap, DailyCapReached, cap_status, cap_take
from services.policy import actor_for
from services.providers.base import ProviderError, ProviderErrorCode
from tests.conftest import requires_postgres
from tests.db.test_credits_concurrency import run_parallel
from tests.factories import make_org, make_user

pytestmark = [requires_postgres, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def fast_local_chat(monkeypatch):
    monkeypatch.setenv("LOCAL_CHAT_CHUNK_SECONDS", "0")
    reset_settings_cache()
    yield
    reset_settings_cache()


def _world(pg_engine, used: int = 0):
    with Session(pg_engine, expire_on_commit=False) as session:
        owner = make_user(session, "owner@example.com")
        org = make_org(session, owner)
        chat = assistant.conversation_create(
            session=session, user=owner, org_id=org.id, project_id=None, model_key="local-text"
        )
        for index in range(used):
            cap_take(
                session=session,
                org_id=org.id,
                cap=Cap.assistant_messages,
                idempotency_key=f"seed-{index}",
            )
        session.commit()
    return owner, org, chat


def test_fifty_concurrent_messages_at_cap_minus_one_accept_exactly_one(pg_engine):
    freeze(datetime(2026, 11, 26, 15, 0, tzinfo=UTC))
    owner, org, _chat = _world(pg_engine, used=19)
    with Session(pg_engine, expire_on_commit=False) as session:
        chats = [
            assistant.conversation_create(
                session=session, user=owner, org_id=org.id, project_id=None, model_key="local-text"
            ).public_id
            for _ in range(50)
        ]  # one each, so only the daily cap (not a reply in progress) can refuse
        session.commit()

    def send(index):
        return lambda session: assistant.message_send(
            session=session,
            user=session.get(type(owner), owner.id),
            org_id=org.id,
            public_id=chats[index],
            content=f"Message {index}",
            idempotency_key=f"send-{index}",
        )

    results = run_parallel(pg_engine, [send(index) for index in range(50)], workers=10)
    accepted = [r for r in results if isinstance(r, assistant.Accepted)]
    refused = [r for r in results if isinstance(r, DailyCapReached)]
    assert len(accepted) == 1 and len(refused) == 49, results
    with Session(pg_engine) as session:
        assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 20
        users = session.execute(
            text("SELECT count(*) FROM assistant_messages WHERE role = 'user'")
        ).scalar()
        assert users == 1


def test_search_uses_the_postgres_index_and_finds_an_old_conversation(pg_engine):
    owner, org, chat = _world(pg_engine)
    with Session(pg_engine, expire_on_commit=False) as session:
        accepted = assistant.message_send(
            session=session,
            user=session.get(type(owner), owner.id),
            org_id=org.id,
            public_id=chat.public_id,
            content="Ideas for the autumn newsletter",
            idempotency_key="a",
        )
        session.commit()
    assistant.reply_produce(accepted.reply_id)
    with Session(pg_engine) as session:
        indexes = session.execute(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'assistant_messages'")
        ).scalars()
        assert "ix_assistant_messages_search" in set(indexes)
        actor = actor_for(session=session, user=session.get(type(owner), owner.id), org_id=org.id)
        for query, expected in (("autumn", [chat.public_id]), ("newsl", [chat.public_id])):
            found = assistant.conversations_list(
                session=session, actor=actor, org_id=org.id, query=query
            )
            assert [c.public_id for c in found] == expected
        assert (
            assistant.conversations_list(
                session=session, actor=actor, org_id=org.id, query="winter & | ! :*"
            )
            == []
        )


class Failing:
    name = "failing"

    def chat(self, **_kwargs):
        raise ProviderError(ProviderErrorCode.provider_error, "The provider failed.")


def test_a_failed_message_returns_its_unit_once_even_with_two_producers(pg_engine, monkeypatch):
    owner, org, chat = _world(pg_engine, used=5)
    with Session(pg_engine, expire_on_commit=False) as session:
        accepted = assistant.message_send(
            session=session,
            user=session.get(type(owner), owner.id),
            org_id=org.id,
            public_id=chat.public_id,
            content="Hello",
            idempotency_key="fails",
        )
        session.commit()
        assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 6
    monkeypatch.setattr(assistant, "provider_for", lambda model: Failing())
    outcomes = run_parallel(
        pg_engine, [lambda _s: assistant.reply_produce(accepted.reply_id) for _ in range(2)]
    )
    assert sorted(outcomes) == ["", "failed"] or sorted(outcomes) == ["failed", "failed"]
    with Session(pg_engine) as session:
        assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 5
        assert session.get(AssistantMessage, accepted.reply_id).status == "failed"


def test_two_sweeps_at_once_fail_a_silent_reply_and_give_its_unit_back_once(pg_engine):
    owner, org, _chat = _world(pg_engine, used=3)
    replies = []
    with Session(pg_engine, expire_on_commit=False) as session:
        user = session.get(type(owner), owner.id)
        for index, content in enumerate(["", "", "Half a reply"]):
            chat = assistant.conversation_create(
                session=session, user=user, org_id=org.id, project_id=None, model_key="local-text"
            )
            accepted = assistant.message_send(
                session=session,
                user=user,
                org_id=org.id,
                public_id=chat.public_id,
                content="Hello",
                idempotency_key=f"sweep-{index}",
            )
            reply = session.get(AssistantMessage, accepted.reply_id)
            reply.content = content
            reply.heartbeat_at = datetime.now(UTC) - timedelta(minutes=5)
            session.add(reply)
            replies.append(accepted.reply_id)
        session.commit()
        assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 6
    results = run_parallel(
        pg_engine, [lambda _s: assistant.replies_sweep_stale() for _ in range(2)]
    )
    assert sum(r.failed for r in results) == 2
    assert sum(r.interrupted for r in results) == 1
    assert sum(r.released for r in results) == 2
    with Session(pg_engine) as session:
        assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 4
        statuses = [session.get(AssistantMessage, reply_id).status for reply_id in replies]
        assert statuses == ["failed", "failed", "interrupted"]
