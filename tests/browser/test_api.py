"""Settings > API and Logs in the browser: create a key (shown once), set the API controls,
call the API with the key, and find that request in Logs by its request id."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


def _sign_in(page, base_url: str, email: str, password: str) -> None:
    """As `tests.live_app.sign_in`, naming the password button exactly (the sign-in page may
    also offer single sign-on)."""
    page.goto(base_url + "/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_create_a_key_set_controls_and_find_the_request_in_logs(app_server, page):
    _sign_in(page, app_server.base_url, "owner@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    page.goto(app_server.base_url + "/org/acme/settings")
    page.get_by_role("link", name="API keys").click()
    expect(page).to_have_url(re.compile(r"/org/acme/settings/api$"))
    expect(page.get_by_role("heading", name="API", level=1)).to_be_visible()

    page.get_by_label("Key name").fill("Browser test key")
    page.get_by_role("button", name="Create key").click()
    secret_box = page.get_by_label("New API key")
    expect(secret_box).to_contain_text("cs_")
    secret = secret_box.inner_text().strip()
    expect(page.get_by_text("it is shown only once")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("Browser test key"))
    expect(row).to_contain_text(secret[:11])
    screenshot(page, "api-key-created")

    page.get_by_role("checkbox", name="Studio Local Text (local-text)").click()
    page.get_by_role("button", name="Save API controls").click()
    expect(page.get_by_text("API controls saved")).to_be_visible()

    answer = httpx.post(
        app_server.backend_url + "/v1/chat/completions",
        json={"model": "local-text", "messages": [{"role": "user", "content": "Spring sale"}]},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=60,
    )
    request_id = answer.headers["x-request-id"]
    assert answer.status_code in (200, 402), answer.text  # 402 if the seed has no credits
    listed = httpx.get(
        app_server.backend_url + "/v1/models", headers={"Authorization": f"Bearer {secret}"}
    )
    assert [m["id"] for m in listed.json()["data"]] == ["local-text"]

    page.get_by_role("button", name="I saved the key").click()
    expect(page.get_by_label("New API key")).to_have_count(0)
    page.reload()
    expect(page.get_by_role("row", name=re.compile("Browser test key"))).to_be_visible()
    expect(page.get_by_text(secret)).to_have_count(0)  # never shown again

    page.get_by_role("link", name="See every API request in Logs").click()
    expect(page).to_have_url(re.compile(r"/org/acme/settings/logs$"))
    page.get_by_label("Request id").fill(request_id)
    page.get_by_role("button", name="Search").click()
    found = page.get_by_role("row", name=re.compile(request_id))
    expect(found).to_be_visible()
    expect(found).to_contain_text("/v1/chat/completions")
    expect(page.get_by_text("Requests are kept 30 days", exact=False)).to_be_visible()
    screenshot(page, "api-logs-search")
    page.set_viewport_size({"width": 375, "height": 800})
    expect(found).to_be_visible()
    screenshot(page, "api-logs-search-375")
    page.goto(app_server.base_url + "/org/acme/settings/api")
    expect(page.get_by_role("button", name="Create key")).to_be_visible()
    screenshot(page, "api-settings-375")
