"""A new person registers, verifies through the mailed link, signs in and creates an organization."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

PASSWORD = "violet-harbor-lantern-42"


def _latest_link(app_server, email: str, path: str) -> str:
    code = (
        "from sqlmodel import Session, select\n"
        "from core.db import get_engine\n"
        "from models import OutboxMail\n"
        "with Session(get_engine()) as s:\n"
        f"    m = s.exec(select(OutboxMail).where(OutboxMail.to_address == {email!r}).order_by(OutboxMail.id.desc())).first()\n"
        "    print(m.body_text)\n"
    )
    body = app_server.run_python(code)
    match = re.search(r"https?://\S+" + re.escape(path) + r"\?token=[\w\-]+", body)
    assert match, body
    return match.group(0)


def test_register_verify_sign_in_and_create_an_organization(app_server, page):
    email = "new.marketer@example.com"
    page.goto(app_server.base_url + "/register")
    page.get_by_label("Name").fill("Nia Marketer")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Repeat password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("12")  # names the failed rule
    # ...and marks the field it is about for screen readers, that one alone.
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "false")
    screenshot(page, "register-weak-password")
    desktop = page.viewport_size
    page.set_viewport_size({"width": 375, "height": 812})
    screenshot(page, "register-weak-password-375")
    page.set_viewport_size(desktop)

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status").first).to_contain_text(email)

    link = _latest_link(app_server, email, "/verify-email")
    page.goto(link)
    expect(page.get_by_role("status")).to_contain_text("is verified")
    page.goto(link)  # single use
    expect(page.get_by_role("alert")).to_be_visible()

    sign_in(page, app_server.base_url, email, PASSWORD)
    expect(page).to_have_url(re.compile(r"/orgs/new$"))
    page.get_by_label("Organization name").fill("Nia's Agency")
    page.get_by_role("button", name="Create organization").click()
    expect(page).to_have_url(re.compile(r"/org/nias-agency/studio$"))
    expect(page.get_by_label("Switch organization")).to_contain_text("Nia's Agency")


def test_five_wrong_passwords_lock_the_account_and_say_for_how_long(app_server, page):
    for _ in range(5):
        sign_in(page, app_server.base_url, "scoped@acme.test", "definitely-wrong-password")
        expect(page.get_by_role("alert")).to_be_visible()
    sign_in(page, app_server.base_url, "scoped@acme.test", "definitely-wrong-password")
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"Try again in 1[45] minutes"))
    screenshot(page, "sign-in-locked")


def test_registering_a_taken_address_looks_like_any_registration_and_tells_its_owner(
    app_server, page
):
    email = "taken.owner@example.com"
    app_server.run_python(
        "from sqlmodel import Session\nfrom core.crypto import hash_password\n"
        "from core.db import get_engine\nfrom models import User\n"
        "with Session(get_engine()) as s:\n"
        f"    s.add(User(email={email!r}, name='Taken Owner', password_hash=hash_password('x')))\n"
        "    s.commit()\n"
    )
    page.goto(app_server.base_url + "/register")
    page.get_by_label("Name").fill("Somebody Else")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    status = page.get_by_role("status").first
    expect(status).to_contain_text(f"we sent an email to {email}")
    expect(page.get_by_role("alert")).to_have_count(0)
    screenshot(page, "register-taken-address")
    subjects = app_server.run_python(
        "from sqlmodel import Session, select\nfrom core.db import get_engine\n"
        "from models import OutboxMail\n"
        "with Session(get_engine()) as s:\n"
        f"    print([m.subject for m in s.exec(select(OutboxMail).where(OutboxMail.to_address == {email!r}))])\n"
    )
    assert "Someone tried to create a Creative Studio account with your email" in subjects
