"""Report this: an org page's error with a code links to Contact support filled in with the
code and the UTC time it was shown; the same callout elsewhere stays a plain message."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from core import clock
from creative_studio.components.forms import error_callout
from state.api_settings import ApiSettingsState
from state.sign_in import SignInState
from state.team import TeamState
from tests.factories import signed_in_cookie
from tests.unit.api_support import ApiWorld


def test_an_error_with_a_code_offers_report_this_with_code_and_utc_time(session, page_state, call):
    clock.freeze(datetime(2026, 11, 26, 9, 41, 30, tzinfo=UTC))
    world = ApiWorld(session)
    cookie = signed_in_cookie(session, world.owner)
    session.commit()
    path = f"/org/{world.org.slug}/settings/api"
    page = page_state(ApiSettingsState, cookie=cookie, path=path)
    asyncio.run(call(page, "load"))
    assert page.error == "" and page.report_href == ""  # nothing to report
    asyncio.run(call(page, "create_key", {"name": "", "form_token": page.form_token}))
    assert page.error and page.error_code
    link = urlsplit(page.report_href)
    assert link.path == f"/org/{world.org.slug}/help/support"
    assert parse_qs(link.query) == {"error_code": [page.error_code], "time": ["2026-11-26 09:41"]}
    asyncio.run(call(page, "load"))  # the message is gone, and so is the link
    assert page.error == "" and page.report_href == ""


def test_the_org_page_callout_renders_report_this_and_others_do_not():
    org_page = str(error_callout(TeamState.error))
    assert "Report this" in org_page and "report_href" in org_page
    assert "Report this" not in str(error_callout(SignInState.error))
    assert "Report this" not in str(error_callout("A plain message"))
