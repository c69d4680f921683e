"""Operators see recorded job runs; members get a plain explanation instead."""

import re

import pytest
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_operator_sees_job_runs_and_a_member_is_told_why_not(app_server, browser):
    app_server.run_python(
        "from jobs.definitions import job_run_now\njob_run_now('invites_expire')\n"
    )

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    sign_in(page, app_server.base_url, "operator@creative-studio.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/operator$"))  # operators land on the console
    page.goto(app_server.base_url + "/operator/jobs")
    expect(page.get_by_role("heading", name="Background jobs", level=1)).to_be_visible()
    runs = page.get_by_role("table")
    expect(runs).to_contain_text("invites_expire")
    expect(runs).to_contain_text("succeeded")
    screenshot(page, "operator-jobs")
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    sign_in(page, app_server.base_url, "editor@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    page.goto(app_server.base_url + "/operator/jobs")
    expect(page.get_by_role("heading", name="For platform operators")).to_be_visible()
    expect(page.get_by_role("table")).to_have_count(0)
    context.close()
