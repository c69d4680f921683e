"""The app starts, the sign-in page works, and a signed-in member sees the shell with every area."""

import re

import pytest
from playwright.sync_api import expect

from core.routes import AREAS
from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_signed_out_visitor_is_sent_to_sign_in_and_back_after(app_server, page):
    page.goto(app_server.base_url + "/org/acme/billing")
    # A first visit passes /auth/sign-in once for its pre-auth cookie and comes back with
    # browser=1 (`next` then URL-encoded); the static build may add a trailing slash. Waiting
    # for browser=1, not just the path, keeps the screenshot below from racing that hop.
    expect(page).to_have_url(
        re.compile(r"/sign-in/?\?next=(/|%2F)org(/|%2F)acme(/|%2F)billing&browser=1$")
    )
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "sign-in")

    page.get_by_label("Email").fill("owner@acme.test")
    page.get_by_label("Password").fill(DEV_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/org/acme/billing$"))
    expect(page.get_by_role("heading", name="Billing", level=1)).to_be_visible()


def test_wrong_password_says_so_without_leaking_which_part_was_wrong(app_server, page):
    sign_in(page, app_server.base_url, "owner@acme.test", "not-the-password-at-all")
    expect(page.get_by_role("alert")).to_contain_text("email or password")
    expect(page).to_have_url(re.compile(r"/sign-in"))


def test_shell_lists_every_area_and_navigates(app_server, page):
    sign_in(page, app_server.base_url, "owner@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    nav = page.get_by_role("navigation", name="Areas")
    for area in AREAS:
        expect(nav.get_by_role("link", name=area.label)).to_be_visible()
    expect(page.get_by_label("Switch organization")).to_contain_text("Acme Inc.")
    expect(page.get_by_text("Olivia Owner", exact=True).first).to_be_visible()
    screenshot(page, "shell-studio")

    nav.get_by_role("link", name="Team").click()
    expect(page).to_have_url(re.compile(r"/org/acme/team$"))
    expect(page.get_by_role("heading", name="Team", level=1)).to_be_visible()


def test_unknown_org_says_not_found_instead_of_erroring(app_server, page):
    sign_in(page, app_server.base_url, "viewer@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    page.goto(app_server.base_url + "/org/globex/studio")
    expect(page.get_by_role("heading", name="Organization not found")).to_be_visible()


def test_shell_is_usable_on_a_phone(app_server, browser):
    context = browser.new_context(viewport={"width": 375, "height": 760})
    page = context.new_page()
    sign_in(page, app_server.base_url, "editor@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    page.get_by_role("button", name="Open navigation").click()
    expect(page.get_by_role("dialog").get_by_role("link", name="Billing")).to_be_visible()
    page.wait_for_timeout(800)  # let the drawer finish sliding in before the screenshot
    screenshot(page, "shell-mobile-menu")
    context.close()


def test_sign_out_ends_the_session(app_server, page):
    sign_in(page, app_server.base_url, "admin@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    page.get_by_role("button", name="Sign out").first.click()
    expect(page).to_have_url(re.compile(r"/sign-in"))
    page.goto(app_server.base_url + "/org/acme/studio")
    expect(page).to_have_url(re.compile(r"/sign-in"))


def test_analytics_explains_itself_to_a_member_and_opens_for_an_admin(app_server, browser):
    for email, sees_explanation in (("editor@acme.test", True), ("admin@acme.test", False)):
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        sign_in(page, app_server.base_url, email, DEV_PASSWORD)
        expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
        page.goto(app_server.base_url + "/org/acme/analytics")
        explanation = page.get_by_role("heading", name="Analytics is for owners and admins")
        if sees_explanation:
            expect(explanation).to_be_visible()
            expect(page.get_by_role("note")).to_contain_text("Editor")
            screenshot(page, "analytics-member-explanation")
        else:
            expect(page.get_by_role("heading", name="Analytics", level=1)).to_be_visible()
            expect(explanation).to_have_count(0)
        context.close()
