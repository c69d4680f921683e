"""Competitor Intel page handlers called as the browser calls them."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from core import db
from core.settings import reset_settings_cache
from models import CompetitorReport
from services.intel import runner
from state.intel import IntelState
from tests.factories import add_member, make_org, make_projects, make_user, signed_in_cookie
from tests.intel_site import competitor_site


@pytest.fixture
def site(monkeypatch):
    monkeypatch.setenv("INTEL_ALLOWED_HOSTS", "127.0.0.1")
    reset_settings_cache()
    with competitor_site() as running:
        yield running
    reset_settings_cache()


def _page(session, page_state, call, user, org) -> IntelState:
    cookie = signed_in_cookie(session, user)
    session.commit()
    page = page_state(IntelState, cookie=cookie, path=f"/org/{org.slug}/intel")
    asyncio.run(call(page, "load"))
    return page


def _form(page: IntelState, site, **extra) -> dict:
    return {
        "competitor": "Rival Inc",
        "urls": site.url("/") + "\n" + site.url("/pricing"),
        "focus": "pricing",
        "project": page.project_id,
        "request_token": page.request_token,
        **extra,
    }


def _reports() -> list[CompetitorReport]:
    with db.new_session() as fresh:
        return list(fresh.exec(select(CompetitorReport)))


def test_editor_requests_a_report_once_and_reads_it_grouped_per_competitor(
    session, page_state, call, site
):
    owner = make_user(session, "owner@intel-state.test")
    org = make_org(session, owner, plan_key="growth", credits=50_000)
    make_projects(session, org, 1, name="Launch")
    editor = add_member(session, org, "editor@intel-state.test", "editor")
    session.commit()
    page = _page(session, page_state, call, editor, org)
    assert page.can_run and page.blockers == []
    assert page.estimate_line.startswith("A report costs 5 credits")
    form = _form(page, site)
    asyncio.run(call(page, "request_report", form))
    asyncio.run(call(page, "request_report", form))  # a double click acts once
    assert len(_reports()) == 1
    runner.report_task(_reports()[0].id)
    asyncio.run(call(page, "select", page.selected))
    assert page.d_status == "succeeded" and page.d_headline == "Campaigns that ship themselves"
    assert any(c.section == "Summary" and c.cites[0].key == "S1" for c in page.d_claims)
    assert page.d_actions and page.d_actions[0].href.startswith(f"/org/{org.slug}/studio?prompt=")
    assert [(r.competitor, r.group_first) for r in page.history] == [("Rival Inc", True)]
    download = asyncio.run(call(page, "download", "csv"))
    assert download is not None and page.error == ""


def test_viewer_reads_but_cannot_request(session, page_state, call, site):
    owner = make_user(session, "owner2@intel-state.test")
    org = make_org(session, owner, plan_key="growth", credits=50_000)
    make_projects(session, org, 1, name="Launch")
    viewer = add_member(session, org, "viewer@intel-state.test", "viewer")
    session.commit()
    page = _page(session, page_state, call, viewer, org)
    assert not page.can_run
    asyncio.run(call(page, "request_report", _form(page, site)))
    assert "Viewers" in page.error
    assert _reports() == []
    asyncio.run(call(page, "select", "rep_doesnotexist"))
    assert "does not exist" in page.error
