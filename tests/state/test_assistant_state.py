"""Assistant page handlers called as the browser calls them: what a person sees after each one."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlmodel import select

from core import db
from core.settings import reset_settings_cache
from models import AIModel, AssistantMessage
from services import assistant
from services.caps import Cap, cap_take
from state.assistant import MODEL_NOT_LISTED, VIEWER_REASON, AssistantState
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
    assert page.replying and page._reply_id
    wait_for_reply(page._reply_id)
    asyncio.run(call(page, "search"))  # any refresh shows the stored reply
    reply = page.messages[-1]
    assert reply.status == "done" and "Here is a draft for" in reply.markdown
    # Stored and shown as written (no `&lt;` in code); the view renders it with raw HTML off.
    assert "<img src=x onerror=alert(1)>" in reply.markdown and "&lt;" not in reply.markdown
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


def test_messages_render_markdown_with_raw_html_off():
    from creative_studio.pages.assistant.chat import chat_panel

    compiled = str(chat_panel())
    assert "ReactMarkdown" in compiled and "rehypePlugins:[" in compiled
    assert "rehypeRaw" not in compiled  # `<img onerror=...>` stays text, `<` in code stays `<`


@pytest.fixture
def pro_text_model(session):
    """A text model Free does not include (the starting catalog has none)."""
    session.add(
        AIModel(
            key="local-text-pro",
            display_name="Studio Local Text Pro",
            modality="text",
            provider="local",
            provider_model_id="studio-local-text-1",
            min_plan_key="growth",
            tier="premium",
            rate_millicredits=3000,
            rate_unit="per_1k_tokens",
            sort_order=15,
        )
    )
    session.commit()


def test_a_locked_model_opens_the_upgrade_offer_and_cannot_start_a_chat(
    session, page_state, call, acme, pro_text_model
):
    owner, org, viewer = acme
    page = page_for(session, page_state, call, owner, org)
    rows = {m.key: m for m in page.text_models}
    assert rows["local-text-pro"].state == "locked"
    assert rows["local-text-pro"].state_label == "Needs Growth"
    assert page.new_model == "local-text"

    asyncio.run(call(page, "pick_model", "local-text-pro"))
    assert page.upgrade_open and page.new_model == "local-text"
    assert (page.offer.plan_name, page.offer.model_key) == ("Growth", "local-text-pro")
    assert page.offer.is_owner and page.offer.billing_href == f"/org/{org.slug}/billing"
    assert "Studio Local Text Pro" in page.offer.unlocks[0]
    closed = asyncio.run(call(page, "set_upgrade_open", False))
    assert not page.upgrade_open
    assert "local-text-pro" in str(closed)  # focus goes back to the model's row

    for forged in ("no-such-model", ["local-text"], None, "x" * 5000):
        asyncio.run(call(page, "pick_model", forged))
        assert page.error == MODEL_NOT_LISTED and page.new_model == "local-text"
    asyncio.run(call(page, "pick_model", "local-text"))
    assert page.error == "" and page.new_model == "local-text"

    page.new_model = "local-text-pro"  # as if the picker had been bypassed
    asyncio.run(call(page, "new_conversation"))
    assert page.error_code == "model_not_available"
    with db.new_session() as fresh:
        assert fresh.exec(select(assistant.AssistantConversation)).all() == []

    # Someone who is not the owner is told who can upgrade.
    page = page_for(session, page_state, call, viewer, org)
    asyncio.run(call(page, "pick_model", "local-text-pro"))
    assert page.upgrade_open and not page.offer.is_owner
    assert page.offer.owner_names == "Olivia Owner"


def test_a_signed_out_tab_cannot_open_the_upgrade_offer(page_state, call):
    page = page_state(AssistantState, path="/org/acme/assistant")
    asyncio.run(call(page, "set_upgrade_open", True))
    assert not page.upgrade_open
