"""Competitor Intel in the browser: a report is requested, shows progress, renders its sections
with links to their sources; "Create in Studio" carries the prompt (clicked at desktop width
and at 375 px, and opened as a new tab); a second report on the same competitor shows what
changed. Screenshots at desktop width and at 375 px.

The "competitor site" is a loopback server; the app may fetch it because the shared app server
names 127.0.0.1 in INTEL_ALLOWED_HOSTS (tests/live_app.py).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot
from tests.intel_site import competitor_site

pytestmark = pytest.mark.browser

INTEL = "/org/acme/intel"


@pytest.fixture(scope="module")
def site():
    with competitor_site() as running:
        yield running


def _sign_in(page, base_url: str, email: str) -> None:
    page.goto(base_url + "/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEV_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def _request(page, site) -> None:
    page.get_by_label("Competitor").fill("Rival Inc")
    page.get_by_label("Pages to read").fill(
        "\n".join(site.url(path) for path in ("/", "/pricing", "/about", "/private"))
    )
    page.get_by_role("button", name="Request report").click()


def test_request_follow_read_and_compare_reports(app_server, page, site):
    _sign_in(page, app_server.base_url, "editor@acme.test")
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    page.goto(app_server.base_url + INTEL)
    expect(page.get_by_role("heading", name="Request a report")).to_be_visible()
    expect(page.get_by_text(re.compile(r"A report costs 5 credits"))).to_be_visible()

    _request(page, site)
    progress = page.get_by_role("status", name="Report progress")
    expect(progress).to_be_visible()
    expect(progress).to_contain_text("Done", timeout=90_000)
    expect(page.get_by_role("heading", name="Pricing tiers")).to_be_visible()
    expect(page.get_by_text("Campaigns that ship themselves").first).to_be_visible()
    source_link = page.get_by_role("link", name="Source S2").first
    expect(source_link).to_have_attribute("href", site.url("/pricing"))
    expect(page.get_by_text(re.compile(r"robots\.txt .* disallows this page"))).to_be_visible()
    screenshot(page, "intel-report-desktop")

    create = page.get_by_role("link", name=re.compile(r"^Create in Studio")).first
    href = create.get_attribute("href")
    assert urlsplit(href).path == "/org/acme/studio"
    assert "Rival Inc" in parse_qs(urlsplit(href).query)["prompt"][0]
    create.click()  # Studio opens with the action's prompt filled in
    expect(page).to_have_url(re.compile(r"/org/acme/studio\?prompt="))
    expect(page.locator("#studio-prompt")).to_have_value(re.compile(r"Rival Inc"))
    screenshot(page, "intel-create-in-studio")

    # The same at 375 px wide: the link must open Studio, not a bare "Not Found" page.
    page.go_back()
    page.set_viewport_size({"width": 375, "height": 812})
    create = page.get_by_role("link", name=re.compile(r"^Create in Studio")).first
    expect(create).to_be_visible()
    create.scroll_into_view_if_needed()
    screenshot(page, "intel-report-375")
    create.click()
    expect(page).to_have_url(re.compile(r"/org/acme/studio\?prompt="))
    expect(page.get_by_text("Not Found", exact=True)).to_have_count(0)
    expect(page.locator("#studio-prompt")).to_have_value(re.compile(r"Rival Inc"))
    screenshot(page, "intel-create-in-studio-375")
    # Opened as a new tab (a long press on a phone): the server answers the address itself.
    tab = page.context.new_page()
    tab.set_viewport_size({"width": 375, "height": 812})
    tab.goto(page.url)
    expect(tab.get_by_text("Not Found", exact=True)).to_have_count(0)
    expect(tab.locator("#studio-prompt")).to_have_value(re.compile(r"Rival Inc"))
    tab.close()
    page.set_viewport_size({"width": 1280, "height": 860})
    page.goto(app_server.base_url + INTEL)

    site.version = "v2"  # a new headline and a new price tier; another testimonial
    _request(page, site)
    changes = page.get_by_role("region", name="What changed")
    expect(changes).to_be_visible(timeout=90_000)
    expect(changes).to_contain_text("New pricing tier: Scale at $199 per month.")
    expect(changes).to_contain_text("Headline changed")
    screenshot(page, "intel-changes-desktop")

    page.set_viewport_size({"width": 375, "height": 812})
    expect(changes).to_be_visible()
    screenshot(page, "intel-changes-375")
