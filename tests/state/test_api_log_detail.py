"""Settings > Logs drill-down: a request's row opens its run (status, timeline, model, output)
and its ledger entries with amounts (hold, then settle), from a real /v1 call; a refused call
shows no run; another organization's request id is not found."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlmodel import select

from core import db
from models import RequestLog
from services import orgs
from state.api_logs import ApiLogsState
from tests.factories import make_user, signed_in_cookie
from tests.unit.api_support import ApiWorld, serve_v1


def _logs_page(session, page_state, call, user, org):
    cookie = signed_in_cookie(session, user)
    session.commit()
    page = page_state(ApiLogsState, cookie=cookie, path=f"/org/{org.slug}/settings/logs")
    asyncio.run(call(page, "load"))
    return page


def test_a_request_opens_its_run_and_ledger_entries(session, page_state, call):
    world = ApiWorld(session)
    secret = world.key()
    session.commit()
    with serve_v1() as base:
        answer = httpx.post(
            f"{base}/chat/completions",
            headers={"Authorization": f"Bearer {secret}"},
            json={"model": "local-text", "messages": [{"role": "user", "content": "Spring sale"}]},
            timeout=30,
        )
        refused = httpx.post(
            f"{base}/chat/completions",
            headers={"Authorization": f"Bearer {secret}"},
            json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]},
            timeout=30,
        )
    assert answer.status_code == 200 and refused.status_code >= 400
    request_id = answer.headers["x-request-id"]
    page = _logs_page(session, page_state, call, world.owner, world.org)
    row = next(r for r in page.rows if r.request_id == request_id)
    assert row.generation.startswith("gen_")

    asyncio.run(call(page, "open_detail", request_id))
    detail = page.detail
    assert page.detail_open and page.error == ""
    assert detail.run_id == row.generation and detail.run_status == "succeeded"
    assert "queued" in detail.run_steps and "succeeded" in detail.run_steps
    assert [line.kind for line in detail.ledger] == ["hold", "settle"]
    hold, settle = detail.ledger
    hold, settle = detail.ledger
    # The hold took the estimate from the balance; the settle gave back what was not used.
    assert hold.amount.startswith("-") and settle.amount.startswith("+")
    assert round(float(hold.amount) + float(settle.amount), 3) == -float(row.credits)
    assert hold.memo.startswith(detail.run_id) and "UTC" in hold.when
    assert detail.net.endswith("credits") and detail.net == f"{row.credits} credits"
    report = parse_qs(urlsplit(detail.report_href).query)
    assert report["generation_id"] == [detail.run_id] and report["request_id"] == [request_id]

    asyncio.run(call(page, "detail_open_change", False))
    assert not page.detail_open and page.detail.run_id == ""

    asyncio.run(call(page, "open_detail", refused.headers["x-request-id"]))
    assert page.detail.run_id == "" and "started no run" in page.detail.run_note
    assert page.detail.ledger == []


def test_another_organizations_request_or_a_member_gets_nothing(session, page_state, call):
    world = ApiWorld(session)
    stranger = make_user(session, "stranger@other.test")
    other = orgs.org_create(session=session, owner=stranger, name="Other Co", plan_key="free")
    session.add(
        RequestLog(
            request_id="req_other_org_000000000000",
            org_id=other.id,
            method="GET",
            path="/v1/models",
            status_code=200,
        )
    )
    session.commit()
    page = _logs_page(session, page_state, call, world.owner, world.org)
    asyncio.run(call(page, "open_detail", "req_other_org_000000000000"))
    assert not page.detail_open and "No request req_other_org" in page.error
    asyncio.run(call(page, "open_detail", {"forged": ["x"]}))  # any argument from a browser
    assert not page.detail_open

    editor_page = _logs_page(session, page_state, call, world.editor, world.org)
    asyncio.run(call(editor_page, "open_detail", "req_other_org_000000000000"))
    assert not editor_page.detail_open and editor_page.error
    with db.new_session() as fresh:
        assert fresh.exec(select(RequestLog)).first() is not None
