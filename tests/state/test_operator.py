"""Operator console and audit-log handlers called as the browser calls them."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from core import db
from models import CreditLedgerEntry, Generation
from state.operator import OperatorCustomerState, OperatorState
from state.org_audit import OrgAuditState
from tests.factories import add_member, make_org, make_user, signed_in_cookie


@pytest.fixture
def world(session):
    owner = make_user(session, "olivia@acme.test", "Olivia Owner")
    org = make_org(session, owner, "Acme Marketing", credits=10_000)
    editor = add_member(session, org, "eddie@acme.test", "editor")
    ann = make_user(session, "ann@ops.test", "Ann Operator", operator=True)
    session.add(
        Generation(
            public_id="gen_failed1",
            org_id=org.id,
            user_id=owner.id,
            model_key="local-text",
            modality="text",
            status="failed",
            estimate_millicredits=3_000,
            failure_code="provider_error",
            failure_reason="provider down",
        )
    )
    session.commit()
    return {"owner": owner, "org": org, "editor": editor, "ann": ann}


def _tab(session, page_state, call, state_cls, user, path):
    cookie = signed_in_cookie(session, user)
    session.commit()
    state = page_state(state_cls, cookie=cookie, path=path)
    asyncio.run(call(state, "load"))
    return state


def test_operator_finds_a_customer_by_member_email(session, page_state, call, world):
    home = _tab(session, page_state, call, OperatorState, world["ann"], "/operator")
    assert home.allowed and home.models
    asyncio.run(call(home, "search", {"query": "olivia@acme"}))
    assert [(h.slug, h.href) for h in home.hits] == [
        (world["org"].slug, f"/operator/customers/{world['org'].slug}")
    ]
    assert "olivia@acme.test" in home.hits[0].matched


def test_a_customer_gets_an_explanation_not_the_console(session, page_state, call, world):
    home = _tab(session, page_state, call, OperatorState, world["owner"], "/operator")
    assert not home.allowed and "platform operators" in home.denied_message
    asyncio.run(call(home, "search", {"query": "acme"}))
    assert home.hits == [] and home.error


def test_operator_refunds_a_failed_run_once(session, page_state, call, world):
    slug = world["org"].slug
    page = _tab(
        session,
        page_state,
        call,
        OperatorCustomerState,
        world["ann"],
        f"/operator/customers/{slug}",
    )
    # 50 free-plan credits plus the 10 granted
    assert page.name == "Acme Marketing" and page.balance == "60"
    run = next(r for r in page.runs if r.public_id == "gen_failed1")
    assert run.refund_label == "3" and run.can_retry
    asyncio.run(call(page, "open_run_action", "gen_failed1", "refund"))
    asyncio.run(call(page, "submit_run_action", {"reason": ""}))
    assert "reason" in page.error.lower()
    asyncio.run(call(page, "submit_run_action", {"reason": "provider outage"}))
    assert "Refunded 3 credits" in page.notice and page.balance == "63"
    assert next(r for r in page.runs if r.public_id == "gen_failed1").refunded
    # A second tab (or a second operator) pressing it again refunds nothing more.
    asyncio.run(call(page, "open_run_action", "gen_failed1", "refund"))
    assert "already refunded" in page.error
    # A second tab opened before the refund still has the form open: the service refuses.
    page.run_action, page._run_public_id = "refund", "gen_failed1"
    asyncio.run(call(page, "submit_run_action", {"reason": "double click"}))
    assert "already refunded" in page.error and "Ann Operator" in page.error
    with db.new_session() as fresh:
        assert (
            len(
                fresh.exec(
                    select(CreditLedgerEntry).where(CreditLedgerEntry.kind == "refund")
                ).all()
            )
            == 1
        )


def test_owner_reads_and_verifies_the_audit_log_an_editor_cannot(session, page_state, call, world):
    slug = world["org"].slug
    audit = _tab(session, page_state, call, OrgAuditState, world["owner"], f"/org/{slug}/audit")
    assert audit.loaded and audit.entries
    asyncio.run(call(audit, "verify"))
    assert audit.verify_ok and "Integrity verified" in audit.verify_message
    asyncio.run(call(audit, "apply_filters", {"action": "nothing.like.this"}))
    assert audit.entries == []
    asyncio.run(call(audit, "apply_filters", {"since": "2026-13-40"}))
    assert "not a date" in audit.error
    download = asyncio.run(call(audit, "export_csv"))
    assert download is not None
    denied = _tab(session, page_state, call, OrgAuditState, world["editor"], f"/org/{slug}/audit")
    assert not denied.loaded and denied.entries == [] and "owners and admins" in denied.error
    operator = _tab(session, page_state, call, OrgAuditState, world["ann"], f"/org/{slug}/audit")
    assert operator.loaded and operator.entries


def test_operator_runs_a_scheduled_job_now_and_sees_the_run(session, page_state, call, world):
    from state.operator_jobs import OperatorJobsState

    jobs = _tab(session, page_state, call, OperatorJobsState, world["ann"], "/operator/jobs")
    job_id = jobs.jobs[0].job_id
    asyncio.run(call(jobs, "run_now", job_id))
    assert jobs.notice.startswith(f"{job_id} ran now") or jobs.error.startswith(job_id)
    asyncio.run(call(jobs, "load"))
    assert any(run.job_id == job_id for run in jobs.runs)
    asyncio.run(call(jobs, "run_now", "no-such-job"))
    assert "Unknown job" in jobs.error


def test_a_customer_cannot_run_jobs(session, page_state, call, world):
    from state.operator_jobs import OperatorJobsState

    jobs = _tab(session, page_state, call, OperatorJobsState, world["owner"], "/operator/jobs")
    asyncio.run(call(jobs, "run_now", "sessions_purge"))
    assert "platform operators" in jobs.error and jobs.runs == []


def test_view_as_shows_a_banner_on_the_customers_pages_and_stops(session, page_state, call, world):
    from state.operator import ViewAsBannerState

    slug = world["org"].slug
    page = _tab(
        session,
        page_state,
        call,
        OperatorCustomerState,
        world["ann"],
        f"/operator/customers/{slug}",
    )
    asyncio.run(call(page, "start_view_as", {"reason": ""}))
    assert "reason" in page.error.lower() and page.view_as_until == ""
    redirect = asyncio.run(call(page, "start_view_as", {"reason": "customer sees a blank studio"}))
    assert redirect is not None and page.view_as_until
    banner = page_state(
        ViewAsBannerState,
        cookie=signed_in_cookie(session, world["ann"]),
        path=f"/org/{slug}/studio",
    )
    session.commit()
    asyncio.run(call(banner, "check"))
    assert banner.until and banner.org_slug == slug
    # Refunding from the console is refused by the policy while viewing as.
    asyncio.run(call(page, "open_run_action", "gen_failed1", "refund"))
    asyncio.run(call(page, "submit_run_action", {"reason": "try while viewing"}))
    assert "read-only" in page.error
    asyncio.run(call(banner, "stop"))
    asyncio.run(call(banner, "check"))
    assert banner.until == ""
    owner_banner = page_state(
        ViewAsBannerState,
        cookie=signed_in_cookie(session, world["owner"]),
        path=f"/org/{slug}/studio",
    )
    session.commit()
    asyncio.run(call(owner_banner, "check"))
    assert owner_banner.until == ""


def test_an_operator_turns_a_model_off_with_a_reason_and_the_studio_follows(
    session, page_state, call, world
):
    from state.studio import StudioState

    home = _tab(session, page_state, call, OperatorState, world["ann"], "/operator")
    row = next(m for m in home.models if m.key == "local-text")
    assert row.status == "active" and row.orgs_affected >= 1
    asyncio.run(call(home, "open_model_change", "local-text", "disable"))
    asyncio.run(call(home, "change_model", {"reason": ""}))
    assert "reason" in home.error.lower()
    asyncio.run(call(home, "change_model", {"reason": "vendor outage"}))
    assert (
        home.notice.startswith("Studio Local Text is disabled.") and "organization" in home.notice
    )
    assert next(m for m in home.models if m.key == "local-text").status == "disabled"
    asyncio.run(call(home, "open_model_change", "no-such-model", "enable"))
    assert "Pick a model" in home.error

    studio = page_state(
        StudioState,
        cookie=signed_in_cookie(session, world["owner"]),
        path=f"/org/{world['org'].slug}/studio",
    )
    session.commit()
    asyncio.run(call(studio, "load"))
    assert next(m for m in studio.text_models if m.key == "local-text").state == "disabled"

    asyncio.run(call(home, "open_model_change", "local-text", "enable"))
    asyncio.run(call(home, "change_model", {"reason": "vendor back"}))
    assert home.notice.startswith("Studio Local Text is active again.")


def test_a_customer_cannot_change_models(session, page_state, call, world):
    home = _tab(session, page_state, call, OperatorState, world["owner"], "/operator")
    home.model_key, home.model_change = "local-text", "disable"
    asyncio.run(call(home, "change_model", {"reason": "let me try"}))
    assert "platform operators" in home.error
    with db.new_session() as fresh:
        from models import AIModel

        assert (
            fresh.exec(select(AIModel).where(AIModel.key == "local-text")).one().status == "active"
        )


def test_a_bulk_rerun_is_refused_until_a_single_retry_succeeded(session, page_state, call, world):
    slug = world["org"].slug
    page = _tab(
        session,
        page_state,
        call,
        OperatorCustomerState,
        world["ann"],
        f"/operator/customers/{slug}",
    )
    asyncio.run(call(page, "bulk_retry", {"reason": "outage over"}))
    assert "Retry one failed run first" in page.error


def test_operator_refunds_part_of_a_run_and_wrong_amounts_say_why(session, page_state, call, world):
    slug = world["org"].slug
    page = _tab(
        session,
        page_state,
        call,
        OperatorCustomerState,
        world["ann"],
        f"/operator/customers/{slug}",
    )
    asyncio.run(call(page, "open_run_action", "gen_failed1", "refund"))
    for wrong, said in (
        ("lots", "not a number"),
        ("4", "4 credits is more"),
        ("-1", "more than 0"),
    ):
        asyncio.run(call(page, "submit_run_action", {"reason": "partly unusable", "amount": wrong}))
        assert said in page.error, (wrong, page.error)
        assert page.run_action == "refund"  # the form stays open to correct it
    asyncio.run(call(page, "submit_run_action", {"reason": "partly unusable", "amount": "1.5"}))
    assert "Refunded 1.5 credits" in page.notice and page.balance == "61.5"
    assert next(r for r in page.runs if r.public_id == "gen_failed1").refunded
    assert "Partial refund" in page.ledger[0].memo


def test_bulk_stop_waits_for_a_single_stop_and_a_double_click_acts_once(
    session, page_state, call, world, monkeypatch
):
    from core.clock import utcnow
    from services import generations, run_engine

    org = world["org"]
    org.billing_profile_added_at = utcnow()  # the Free plan runs models once billing is set up
    session.add(org)
    executor = run_engine.inline_executor()
    monkeypatch.setattr(executor, "paused", True)
    ids = []
    for index in range(2):
        run = generations.generation_start(
            session=session,
            user=world["owner"],
            org_id=org.id,
            model_key="local-text",
            prompt=f"tagline {index}",
        )
        run.status = "running"
        session.add(run)
        ids.append(run.public_id)
    session.commit()
    page = _tab(
        session,
        page_state,
        call,
        OperatorCustomerState,
        world["ann"],
        f"/operator/customers/{org.slug}",
    )
    asyncio.run(call(page, "bulk_stop", {"reason": "workers restarted"}))
    assert "Stop one running run" in page.error
    asyncio.run(call(page, "open_run_action", ids[0], "stop"))
    asyncio.run(call(page, "submit_run_action", {"reason": "stuck for an hour"}))
    assert not page.error, page.error
    asyncio.run(call(page, "bulk_stop", {"reason": "workers restarted"}))
    assert f"Stopped (credits returned): 1 run(s) ({ids[1]})" in page.notice
    asyncio.run(call(page, "bulk_stop", {"reason": "workers restarted"}))  # the double click
    assert "nothing more happened" in page.notice
    asyncio.run(call(page, "bulk_requeue", {"reason": "workers restarted"}))
    assert "Requeue one queued run" in page.error
    with db.new_session() as fresh:
        from models import AuditLogEntry

        stops = fresh.exec(
            select(AuditLogEntry).where(AuditLogEntry.action == "generation.bulk_stopped")
        ).all()
        assert len(stops) == 1 and stops[0].details["acted"] == [ids[1]]
