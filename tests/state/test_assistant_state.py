"""Assistant page handlers called as the browser calls them: what a person sees after each one."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlmodel import select

from core import db
from core.settings import reset_settings_cache
from models import AssistantMessage
from services import assistant
from services.caps import Cap, cap_take
from state.assistant import VIEWER_REASON, AssistantState
from tests.factories import add_member, make_org, make_user, signed_in_cookie


@pytest.fixture(autouse=True)
def fast_local_chat(monkeypatch):
    monkeypatch.setenv("LOCAL_CHAT_CHUNK_SECONDS", "0")
    reset_settings_cache()
    yield
    reset_settings_cache()


@pytest.fixture
def acme(session):
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    viewer = add_member(session, org, "victor@example.com", "viewer", name="Victor Viewer")
    session.commit()
    return owner, org, viewer


def page_for(session, page_state, call, user, org, conversation="") -> AssistantState:
    cookie = signed_in_cookie(session, user)
    session.commit()
    path = f"/org/{org.slug}/assistant" + (f"?c={conversation}" if conversation else "")
    page = page_state(AssistantState, cookie=cookie, path=path)
    asyncio.run(call(page, "load"))
    if conversation and page.active_id != conversation:  # the test router carries no query
        page.active_id = conversation
        asyncio.run(call(page, "search"))
    return page


def wait_for_reply(reply_id: int) -> AssistantMessage:
    for _ in range(200):
        with db.new_session() as fresh:
            reply = fresh.get(AssistantMessage, reply_id)
            if reply.status != "streaming":
                return reply
        time.sleep(0.05)
    raise AssertionError("the reply did not finish")


def new_chat(session, page, call):
    redirect = asyncio.run(call(page, "new_conversation"))
    assert redirect is not None, page.error
    with db.new_session() as fresh:
        return fresh.exec(select(assistant.AssistantConversation)).all()[-1].public_id


def test_editor_sends_and_sees_the_reply_with_kit_and_allowance(session, page_state, call, acme):
    owner, org, _ = acme
    page = page_for(session, page_state, call, owner, org)
    assert page.can_send and page.can_start
    assert page.cap_line.startswith("20 of 20 messages left today")
    chat_id = new_chat(session, page, call)
    page = page_for(session, page_state, call, owner, org, chat_id)
    follow = asyncio.run(
        call(
            page,
            "send",
            {"message": "Launch post <img src=x onerror=alert(1)>", "form_token": page.form_token},
        )
    )
    assert follow is not None, page.error
    assert [m.role for m in page.messages] == ["user", "assistant"]
    assert page.replying and page.reply_id
    wait_for_reply(page.reply_id)
    asyncio.run(call(page, "search"))  # any refresh shows the stored reply
    reply = page.messages[-1]
    assert reply.status == "done" and "Here is a draft for" in reply.markdown
    assert "<img" not in reply.markdown and "&lt;img src=x onerror=alert(1)&gt;" in reply.markdown
    assert reply.kit_line == "Brand kit used: No brand kit"
    assert reply.studio_href.startswith(f"/org/{org.slug}/studio?prompt=")
    assert page.cap_line.startswith("19 of 20 messages left today")
    assert [c.title for c in page.conversations] == ["Launch post <img src=x onerror=alert(1)>"]


def test_viewer_reads_but_cannot_send_and_is_told_why(session, page_state, call, acme):
    owner, org, viewer = acme
    page = page_for(session, page_state, call, owner, org)
    chat_id = new_chat(session, page, call)
    page = page_for(session, page_state, call, viewer, org, chat_id)
    assert page.active_title == "New conversation"
    assert not page.can_send and page.send_reason == VIEWER_REASON
    assert not page.can_start  # no "New conversation" for a viewer
    asyncio.run(call(page, "send", {"message": "hello", "form_token": page.form_token}))
    assert page.error_code in ("forbidden", "permission_denied") or page.error
    with db.new_session() as fresh:
        assert fresh.exec(select(AssistantMessage)).all() == []


def test_the_cap_names_the_reset_time_and_the_upgrade(session, page_state, call, acme):
    owner, org, _ = acme
    page = page_for(session, page_state, call, owner, org)
    chat_id = new_chat(session, page, call)
    with db.session_scope() as fresh:
        for index in range(20):
            cap_take(
                session=fresh,
                org_id=org.id,
                cap=Cap.assistant_messages,
                idempotency_key=f"u{index}",
            )
    page = page_for(session, page_state, call, owner, org, chat_id)
    assert page.cap_line.startswith("0 of 20 messages left today · resets at 00:00 UTC")
    asyncio.run(call(page, "send", {"message": "one more", "form_token": page.form_token}))
    assert page.error_code == "daily_cap_reached"
    assert page.limit_notice.limit == "assistant_messages"
    assert "resets at 00:00 UTC" in page.limit_notice.message
    assert page.billing_href == f"/org/{org.slug}/billing"


def test_another_organizations_conversation_is_not_found(session, page_state, call, acme):
    owner, org, _ = acme
    stranger = make_user(session, "sam@example.com")
    other = make_org(session, stranger, "Other Co")
    session.commit()
    their_page = page_for(session, page_state, call, stranger, other)
    theirs = new_chat(session, their_page, call)
    page = page_for(session, page_state, call, owner, org, theirs)
    assert page.messages == [] and page.active_title == ""
    for forged in ("chat_nope", 12, None, "x" * 500):
        asyncio.run(call(page, "open_conversation", forged))
        asyncio.run(call(page, "send", {"message": "hi", "form_token": forged}))
    with db.new_session() as fresh:
        assert fresh.exec(select(AssistantMessage)).all() == []


def test_use_in_studio_opens_studio_with_the_reply_as_prompt(session, page_state, call, acme):
    from state.studio import StudioState

    owner, org, _ = acme
    cookie = signed_in_cookie(session, owner)
    session.commit()
    href = f"/org/{org.slug}/studio?prompt=Spring+is+here%21+%3Cb%3Ebold%3C%2Fb%3E"
    studio = page_state(StudioState, cookie=cookie, path=href)
    asyncio.run(call(studio, "load"))
    assert studio.prompt == "Spring is here! <b>bold</b>"
