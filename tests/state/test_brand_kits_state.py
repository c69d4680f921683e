"""Brand kit page handlers: editors save the organization's and a project's kit; viewers read."""

from __future__ import annotations

import asyncio

import pytest

from core import db
from services.brand_kits import brand_kit_for
from state.brand_kits import VIEWER_REASON, BrandKitsState
from tests.factories import add_member, make_org, make_projects, make_user, signed_in_cookie


@pytest.fixture
def acme(session):
    owner = make_user(session, "olivia@example.com")
    org = make_org(session, owner, plan_key="starter")
    project = make_projects(session, org, 1, name="Spring")[0]
    editor = add_member(session, org, "eddie@example.com", "editor")
    session.commit()
    return owner, org, project, editor


def page_for(session, page_state, call, user, org) -> BrandKitsState:
    cookie = signed_in_cookie(session, user)
    session.commit()
    page = page_state(BrandKitsState, cookie=cookie, path=f"/org/{org.slug}/settings/brand")
    asyncio.run(call(page, "load"))
    return page


FORM = {
    "name": "Acme voice",
    "audience": "Small shops",
    "voice": "warm\nbold",
    "avoided_terms": "cheap, bargain",
}


def test_an_editor_saves_the_org_kit_and_a_project_kit(session, page_state, call, acme):
    _, org, project, editor = acme
    page = page_for(session, page_state, call, editor, org)
    assert page.can_edit and not page.exists
    asyncio.run(call(page, "save", FORM))
    assert page.notice.startswith("Saved “Acme voice”"), page.error
    assert [k.name for k in page.kits] == ["Acme voice"]
    asyncio.run(call(page, "pick_scope", str(project.id)))
    assert "uses the organization's (Acme voice)" in page.applies
    asyncio.run(call(page, "save", {**FORM, "name": "Spring voice"}))
    with db.new_session() as fresh:
        kit = brand_kit_for(session=fresh, org_id=org.id, project_id=project.id)
        assert (kit.name, kit.voice, kit.avoided_terms) == (
            "Spring voice",
            ["warm", "bold"],
            ["cheap", "bargain"],
        )


def test_a_viewer_reads_and_is_told_why_not(session, page_state, call, acme):
    owner, org, _, _ = acme
    viewer = add_member(session, org, "vic@example.com", "viewer")
    session.commit()
    page = page_for(session, page_state, call, viewer, org)
    assert not page.can_edit and page.edit_reason == VIEWER_REASON
    asyncio.run(call(page, "save", FORM))
    assert page.error
    for forged in ("999999", "-1", "x", {"a": 1}):
        asyncio.run(call(page, "pick_scope", forged))
    with db.new_session() as fresh:
        assert brand_kit_for(session=fresh, org_id=org.id) is None
