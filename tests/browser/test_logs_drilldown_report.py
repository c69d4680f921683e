"""Settings > Logs drill-down and Report this on an error, in the real app: an owner calls the
API with a new key, opens the request's run and ledger from its Logs row, then meets an error on
Settings > API and reports it with the form filled in."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot
from tests.browser.test_api import _sign_in

pytestmark = pytest.mark.browser


def test_a_logs_row_opens_its_run_and_ledger_and_an_error_can_be_reported(app_server, page):
    _sign_in(page, app_server.base_url, "owner@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    page.goto(app_server.base_url + "/org/acme/settings/api")
    page.get_by_label("Key name").fill("Drill-down key")
    page.get_by_role("button", name="Create key").click()
    secret_box = page.get_by_label("New API key")
    expect(secret_box).to_contain_text("cs_")
    secret = secret_box.inner_text().strip()
    answer = httpx.post(
        app_server.backend_url + "/v1/chat/completions",
        json={"model": "local-text", "messages": [{"role": "user", "content": "Spring sale"}]},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["x-request-id"]

    # The quickstart article is one click from Settings > API.
    expect(page.get_by_role("link", name=re.compile("Read the API quickstart"))).to_have_attribute(
        "href", "/help/api-quickstart"
    )

    # An error with a code offers Report this, filled in with the code and the UTC time.
    page.get_by_role("button", name="I saved the key").click()
    page.get_by_label("Key name").fill("   ")
    page.get_by_role("button", name="Create key").click()
    alert = page.get_by_role("alert").filter(has_text="Error code")
    expect(alert).to_be_visible()
    code = alert.locator("code").inner_text().strip()
    assert code
    screenshot(page, "error-report-this")
    page.get_by_role("link", name="Report this error to support").click()
    expect(page).to_have_url(re.compile(r"/org/acme/help/support\?error_code=" + code))
    expect(page.get_by_label("Error code")).to_have_value(code)
    expect(page.get_by_label("Time (UTC)")).to_have_value(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$")
    )

    page.goto(app_server.base_url + "/org/acme/settings/logs")
    page.get_by_label("Request id").fill(request_id)
    page.get_by_role("button", name="Search").click()
    row = page.get_by_role("row", name=re.compile(request_id))
    expect(row).to_be_visible()
    row.get_by_role("button", name="Run and ledger of " + request_id).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Run and ledger of " + request_id)
    expect(dialog).to_contain_text("succeeded")
    ledger_rows = dialog.get_by_role("row")
    expect(ledger_rows.filter(has_text="hold")).to_contain_text("-")
    expect(ledger_rows.filter(has_text="settle")).to_contain_text("+")
    expect(dialog.get_by_role("link", name="Report this run")).to_have_attribute(
        "href", re.compile("generation_id=gen_")
    )
    screenshot(page, "api-logs-run-and-ledger")
    page.set_viewport_size({"width": 375, "height": 800})
    expect(dialog).to_be_visible()
    screenshot(page, "api-logs-run-and-ledger-375")
    dialog.get_by_role("button", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
