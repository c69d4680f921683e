"""Help center, support and operator-queue handlers called as the browser calls them."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from core import routes
from core.clock import utcnow
from models import Generation, HelpSearchMiss, OutboxMail, SupportTicket
from services import status as status_service
from services.help_center import help_articles_sync
from state.help import HelpState
from state.operator_support import OperatorSupportState
from state.status import IncidentBannerState, StatusState
from state.support import SupportState
from tests.factories import add_member, make_org, make_user, signed_in_cookie


@pytest.fixture
def world(session):
    help_articles_sync(session=session)
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner, plan_key="growth")
    editor = add_member(session, org, "eddie@example.com", "editor", name="Eddie Editor")
    operator = make_user(session, "ops@studio.test", "Opal Operator", operator=True)
    run = Generation(
        public_id="gen_broken42",
        org_id=org.id,
        user_id=editor.id,
        model_key="local-image",
        tool_key="social-image",
        modality="image",
        status="failed",
        failure_code="provider_error",
        finished_at=utcnow(),
        status_history=[{"status": "queued", "at": "2026-11-26T10:00:00"}],
    )
    session.add(run)
    session.commit()
    return org, editor, operator, run


def _run(coro):
    return asyncio.run(coro)


def test_a_signed_out_visitor_searches_and_filters(session, page_state, call):
    help_articles_sync(session=session)
    session.commit()
    state = page_state(HelpState, path="/help")
    _run(call(state, "load_index"))
    assert state.found.endswith("resources found") and len(state.hits) > 10
    _run(call(state, "search", {"q": "billing required"}))
    assert state.hits[0].slug == "billing-required"
    assert state.hits[0].href == "/help/billing-required"
    assert any(part.highlighted for part in state.hits[0].snippet)
    _run(call(state, "choose_tag", "api"))
    assert all("api" in hit.tags for hit in state.hits)
    _run(call(state, "search", {"q": "teleportation device"}))
    assert state.found == "0 resources found"
    with session.begin():
        assert session.exec(select(HelpSearchMiss.query_key)).all() == ["teleportation device"]


def test_report_this_pre_fills_the_form_and_files_one_ticket(world, session, page_state, call):
    org, editor, _operator, run = world
    cookie = signed_in_cookie(session, editor)
    session.commit()
    link = routes.support_new(
        org.slug,
        generation_id=run.public_id,
        error_code="provider_error",
        model="local-image",
        tool="social-image",
        time="2026-11-26 10:05",
        subject="Run failed",
    )
    state = page_state(SupportState, cookie=cookie, path=link)
    _run(call(state, "load_support"))
    assert (state.generation_id, state.reported_code, state.time_utc) == (
        "gen_broken42",
        "provider_error",
        "2026-11-26 10:05",
    )
    assert "run-reliability" in {s.slug for s in state.suggestions}
    form = {
        "subject": "Run failed",
        "body": "The image never came.",
        "generation_id": state.generation_id,
        "error_code": state.reported_code,
        "time": state.time_utc,
        "model": state.model,
        "tool": state.tool,
        "request_id": "",
    }
    _run(call(state, "submit_ticket", form))
    _run(call(state, "submit_ticket", form))  # a double click
    assert state.error == "" and "was sent" in state.notice
    with session.begin():
        tickets = session.exec(select(SupportTicket)).all()
        assert len(tickets) == 1
        ticket = tickets[0]
        assert ticket.generation_public_id == "gen_broken42"
        assert ticket.error_code == "provider_error"
        assert f"{ticket.occurred_at:%Y-%m-%d %H:%M}" == "2026-11-26 10:05"
    assert [t.subject for t in state.tickets] == ["Run failed"]


def test_bad_input_is_explained(world, session, page_state, call):
    org, editor, _operator, _run_row = world
    cookie = signed_in_cookie(session, editor)
    session.commit()
    state = page_state(SupportState, cookie=cookie, path=routes.support_new(org.slug))
    _run(call(state, "load_support"))
    _run(call(state, "submit_ticket", {"subject": "Hi", "time": "yesterday"}))
    assert "subject of 3 to 200" in state.error
    _run(call(state, "submit_ticket", {"subject": "Hello there", "time": "yesterday"}))
    assert "YYYY-MM-DD HH:MM" in state.error


def test_operator_answers_in_the_queue_and_the_customer_sees_it(world, session, page_state, call):
    org, editor, operator, run = world
    editor_cookie = signed_in_cookie(session, editor)
    operator_cookie = signed_in_cookie(session, operator)
    session.commit()
    support = page_state(
        SupportState,
        cookie=editor_cookie,
        path=routes.support_new(org.slug, generation_id=run.public_id),
    )
    _run(call(support, "load_support"))
    _run(call(support, "submit_ticket", {"subject": "Broken run", "generation_id": run.public_id}))
    ticket_id = support._created_ticket_id

    # An editor cannot open the queue.
    denied = page_state(OperatorSupportState, cookie=editor_cookie, path=routes.OPERATOR_SUPPORT)
    _run(call(denied, "load"))
    assert not denied.allowed and denied.queue == []

    queue = page_state(OperatorSupportState, cookie=operator_cookie, path=routes.OPERATOR_SUPPORT)
    _run(call(queue, "load"))
    assert [row.ticket_id for row in queue.queue] == [ticket_id]
    _run(call(queue, "open_ticket", ticket_id))
    _run(call(queue, "load"))
    assert ("Generation ID", "gen_broken42") in {(d.label, d.value) for d in queue.details}
    assert queue.run_status == "failed" and queue.timeline
    _run(call(queue, "add_note", {"note": "Provider blip, known."}))
    _run(call(queue, "reply", {"body": "Sorry, the provider failed; your credits are back."}))
    assert queue.error == "" and "mail" in queue.notice
    with session.begin():
        mails = session.exec(select(OutboxMail).where(OutboxMail.to_address == editor.email)).all()
        assert any("Reply: Broken run" in m.subject for m in mails)

    tickets = page_state(SupportState, cookie=editor_cookie, path=routes.support_tickets(org.slug))
    _run(call(tickets, "load"))
    _run(call(tickets, "open_ticket", ticket_id))
    bodies = [m.body for m in tickets.messages]
    assert "Sorry, the provider failed; your credits are back." in bodies
    assert "Provider blip, known." not in bodies  # notes stay internal
    assert tickets.tickets[0].status_label == "Waiting on customer"


def test_status_page_and_banner_follow_an_incident(world, session, page_state, call):
    org, editor, operator, _run_row = world
    cookie = signed_in_cookie(session, editor)
    status_service.incident_open(
        session=session,
        actor=operator,
        title="Image generation slow",
        components=["studio"],
        impact="degraded",
        body="Investigating",
    )
    session.commit()
    status = page_state(StatusState, path=routes.STATUS)
    _run(call(status, "load"))
    assert status.headline == "Platform status: Degraded performance"
    assert status.open_incidents[0].title == "Image generation slow"
    banner = page_state(IncidentBannerState, cookie=cookie, path=f"/org/{org.slug}/studio")
    _run(call(banner, "load"))
    assert banner.banner_title == "Image generation slow"
    outsider = page_state(IncidentBannerState, path=f"/org/{org.slug}/studio")
    _run(call(outsider, "load"))
    assert outsider.banner_title == ""


def test_notification_preferences_are_per_person(world, session, page_state, call):
    org, editor, _operator, _run_row = world
    cookie = signed_in_cookie(session, editor)
    session.commit()
    state = page_state(SupportState, cookie=cookie, path=routes.help_notifications(org.slug))
    _run(call(state, "load"))
    assert all(p.enabled for p in state.prefs)
    _run(call(state, "set_pref", "run_failed", False))
    assert {p.kind: p.enabled for p in state.prefs}["run_failed"] is False
    _run(call(state, "set_pref", "security", False))
    assert "always sent" in state.error


def test_report_this_from_history_fills_what_the_run_knows(world, session, page_state, call):
    """History's "Report this" link carries only the generation ID."""
    org, editor, _operator, run = world
    cookie = signed_in_cookie(session, editor)
    session.commit()
    link = routes.support_new(org.slug) + "?generation_id=" + run.public_id
    state = page_state(SupportState, cookie=cookie, path=link)
    _run(call(state, "load_support"))
    assert state.reported_code == "provider_error"
    assert (state.model, state.tool) == ("local-image", "social-image")
    assert state.subject == "Run gen_broken42 failed"
    # Another organization's run is not filled in (nor named).
    other = make_org(session, slug="rival")
    session.add(
        Generation(public_id="gen_rival1", org_id=other.id, model_key="local-text", modality="text")
    )
    session.commit()
    state = page_state(
        SupportState, cookie=cookie, path=routes.support_new(org.slug, generation_id="gen_rival1")
    )
    _run(call(state, "load_support"))
    assert state.model == "" and state.subject == ""
