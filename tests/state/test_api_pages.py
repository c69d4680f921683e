"""Settings > API and Settings > Logs handlers called as the browser calls them."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from core import db
from models import ApiKey, RequestLog
from services import api_keys
from state.api_logs import ApiLogsState
from state.api_settings import ApiSettingsState
from tests.factories import signed_in_cookie
from tests.unit.api_support import ApiWorld


@pytest.fixture
def world(session):
    return ApiWorld(session)


def open_page(session, page_state, call, user, org, state_cls, sub):
    cookie = signed_in_cookie(session, user)
    session.commit()
    state = page_state(state_cls, cookie=cookie, path=f"/org/{org.slug}/settings/{sub}")
    asyncio.run(call(state, "load"))
    return state


def keys_in_db() -> list[ApiKey]:
    with db.new_session() as fresh:
        return list(fresh.exec(select(ApiKey)))


def test_owner_creates_a_key_shown_once_and_a_double_submit_creates_one(
    world, session, page_state, call
):
    page = open_page(session, page_state, call, world.owner, world.org, ApiSettingsState, "api")
    token = page.form_token
    asyncio.run(call(page, "create_key", {"name": "Website bot", "form_token": token}))
    assert page.error == ""
    secret = page.new_key_secret
    assert secret.startswith("cs_") and "Website bot" in page.notice
    assert [k.name for k in page.keys] == ["Website bot"]
    asyncio.run(call(page, "create_key", {"name": "Website bot", "form_token": token}))
    assert len(keys_in_db()) == 1 and page.new_key_secret == ""  # shown once, never again
    asyncio.run(call(page, "load"))
    assert page.new_key_secret == ""
    assert all(secret not in repr(row) for row in page.keys)


def test_revoke_takes_a_confirmation_and_says_what_happened(world, session, page_state, call):
    world.key()
    page = open_page(session, page_state, call, world.owner, world.org, ApiSettingsState, "api")
    key_id = page.keys[0].key_id
    asyncio.run(call(page, "ask_revoke", str(key_id)))
    assert page.confirm_revoke_id == key_id
    asyncio.run(call(page, "revoke_key", str(key_id)))
    assert "revoked" in page.notice and page.keys[0].status == "revoked"


def test_controls_turn_the_api_off_and_limit_models(world, session, page_state, call):
    page = open_page(session, page_state, call, world.owner, world.org, ApiSettingsState, "api")
    asyncio.run(call(page, "set_api_enabled", False))
    asyncio.run(call(page, "toggle_allowed_model", "local-text", True))
    asyncio.run(call(page, "toggle_allowed_model", "not-a-model", True))
    asyncio.run(call(page, "save_controls", page.form_token))
    assert "the API is off" in page.notice
    with db.new_session() as fresh:
        controls = api_keys.api_controls_get(session=fresh, org_id=world.org.id)
    assert controls == api_keys.ApiControls(api_enabled=False, allowed_model_keys=("local-text",))


@pytest.mark.parametrize("member", ["editor", "viewer"])
def test_members_get_the_policys_explanation_and_no_keys(world, session, page_state, call, member):
    world.key()
    page = open_page(
        session, page_state, call, getattr(world, member), world.org, ApiSettingsState, "api"
    )
    assert "Only owners and admins can manage API keys" in page.error
    assert page.keys == [] and page.org_address == ""
    asyncio.run(call(page, "create_key", {"name": "sneaky", "form_token": page.form_token}))
    assert len(keys_in_db()) == 1


def test_a_viewer_cannot_mint_a_key_even_with_a_forged_call(world, session, page_state, call):
    page = open_page(session, page_state, call, world.viewer, world.org, ApiSettingsState, "api")
    asyncio.run(call(page, "toggle_scope", "chat:write", True))
    asyncio.run(call(page, "create_key", {"name": "write key", "form_token": page.form_token}))
    assert keys_in_db() == [] and page.new_key_secret == ""


def test_logs_find_a_request_by_id_and_export_csv(world, session, page_state, call):
    secret = world.key()
    with db.new_session() as fresh:
        principal = api_keys.api_key_authenticate(session=fresh, secret=secret)
    for index in range(3):
        session.add(
            RequestLog(
                request_id=f"req_{index:024d}",
                org_id=world.org.id,
                api_key_id=principal.key_id,
                method="POST",
                path="/v1/chat/completions",
                status_code=200 if index else 402,
                error_code=None if index else "insufficient_credits",
                model_key="local-text",
            )
        )
    session.commit()
    page = open_page(session, page_state, call, world.admin, world.org, ApiLogsState, "logs")
    assert len(page.rows) == 3
    asyncio.run(call(page, "search", {"request_id": f"req_{1:024d}"}))
    assert [r.request_id for r in page.rows] == [f"req_{1:024d}"]
    asyncio.run(call(page, "search", {"request_id": "req_missing"}))
    assert page.rows == [] and "No request req_missing" in page.notice
    asyncio.run(call(page, "clear_search"))
    asyncio.run(call(page, "set_status_filter", "error"))
    assert [r.error_code for r in page.rows] == ["insufficient_credits"]
    download = asyncio.run(call(page, "download_csv"))
    assert download is not None


def test_logs_are_for_owners_and_admins(world, session, page_state, call):
    page = open_page(session, page_state, call, world.editor, world.org, ApiLogsState, "logs")
    assert page.rows == [] and "Only owners and admins" in page.error
