"""Team: invite by email, join from the mailed link, address mismatch, and the seat-limit notice.

Tests that change data create their own organization and people (the server is shared).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

NEW_PASSWORD = "copper-meadow-signal-77"


def _make_org(app_server, *, owner_email: str, name: str, plan: str, members=()) -> str:
    """Create a verified owner (password DEV_PASSWORD), an org on `plan`, and members; return the slug."""
    code = f"""
from sqlmodel import Session, select
from core.clock import utcnow
from core.crypto import hash_password
from core.db import get_engine
from models import User
from services import orgs

def user(email):
    with_row = s.exec(select(User).where(User.email == email)).first()
    if with_row:
        return with_row
    row = User(email=email, name=email.split("@")[0].replace(".", " ").title(),
               password_hash=hash_password({DEV_PASSWORD!r}), email_verified_at=utcnow())
    s.add(row); s.flush()
    return row

with Session(get_engine()) as s:
    owner = user({owner_email!r})
    org = orgs.org_create(session=s, owner=owner, name={name!r}, plan_key={plan!r})
    for email, role in {list(members)!r}:
        orgs.membership_add(session=s, org_id=org.id, user_id=user(email).id, role=role)
    s.commit()
    print(org.slug)
"""
    return app_server.run_python(code).strip()


def _invite_link(app_server, email: str) -> str:
    code = f"""
from sqlmodel import Session, select
from core.db import get_engine
from models import OutboxMail
with Session(get_engine()) as s:
    m = s.exec(select(OutboxMail).where(OutboxMail.to_address == {email!r}).order_by(OutboxMail.id.desc())).first()
    print(m.subject)
    print(m.body_text)
"""
    body = app_server.run_python(code)
    match = re.search(r"https?://\S+/invite\?token=[\w\-]+", body)
    assert match, body
    return match.group(0)


def test_team_page_shows_members_roles_and_seats(app_server, page):
    sign_in(page, app_server.base_url, "owner@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    page.goto(app_server.base_url + "/org/acme/team")
    expect(page.get_by_role("heading", name="Team", level=1)).to_be_visible()
    members = page.get_by_role("row", name="Erin Editor")
    expect(members).to_contain_text("editor@acme.test")
    expect(page.get_by_role("row", name="Sam Scoped")).to_contain_text("Spring Launch")
    expect(page.get_by_text(re.compile(r"Seats \d+ of 20 \(Growth\)"))).to_be_visible()
    expect(page.get_by_role("button", name="Send invite")).to_be_visible()
    page.get_by_label("Role", exact=True).click()
    page.get_by_role("option", name="Editor (selected projects)").click()
    expect(page.get_by_role("checkbox", name="Spring Launch")).to_be_visible()
    screenshot(page, "team-owner")


def test_viewer_sees_the_team_read_only_with_who_can_change_it(app_server, page):
    sign_in(page, app_server.base_url, "viewer@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    page.goto(app_server.base_url + "/org/acme/team")
    expect(page.get_by_role("row", name="Olivia Owner")).to_be_visible()
    expect(page.get_by_role("note").first).to_contain_text("Only owners and admins")
    expect(page.get_by_role("note").first).to_contain_text("Olivia Owner")
    expect(page.get_by_role("button", name="Send invite")).to_have_count(0)
    expect(page.get_by_role("button", name="Leave organization")).to_be_visible()


def test_owner_invites_an_editor_who_registers_from_the_mail_and_joins(app_server, page, browser):
    slug = _make_org(
        app_server, owner_email="tina.owner@example.test", name="Tidal Works", plan="growth"
    )
    invited = "new.editor@example.test"
    sign_in(page, app_server.base_url, "tina.owner@example.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(rf"/org/{slug}/studio$"))
    page.goto(f"{app_server.base_url}/org/{slug}/team")
    page.get_by_label("Email address").fill(invited)
    expect(page.get_by_label("Role", exact=True)).to_contain_text("Editor")
    page.get_by_role("button", name="Send invite").click()
    expect(page.get_by_role("status").filter(has_text="Invite sent")).to_contain_text(invited)
    expect(page.get_by_role("row", name=invited)).to_contain_text("Pending")
    expect(page.get_by_text("Seats 2 of 20 (Growth)")).to_be_visible()

    link = _invite_link(app_server, invited)
    assert link.startswith(app_server.base_url)

    fresh = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        guest = fresh.new_page()
        guest.goto(link)
        expect(guest.get_by_role("heading", name="Join Tidal Works")).to_be_visible()
        expect(guest.get_by_text("Tina Owner", exact=True)).to_be_visible()
        guest.get_by_role("button", name="Create an account").click()
        expect(guest).to_have_url(re.compile(r"/register/?\?"))
        email_input = guest.get_by_label("Email")
        expect(email_input).to_have_value(invited)
        expect(email_input).to_have_attribute("readonly", "")
        guest.get_by_label("Name").fill("Nico Editor")
        guest.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
        guest.get_by_label("Repeat password").fill(NEW_PASSWORD)
        guest.get_by_role("button", name="Create account").click()
        expect(guest.get_by_role("status").first).to_contain_text("invitation confirmed")
        guest.get_by_role("button", name="Continue to sign in").click()
        expect(guest).to_have_url(re.compile(r"/sign-in/?\?next="))
        guest.get_by_label("Email").fill(invited)
        guest.get_by_label("Password").fill(NEW_PASSWORD)
        guest.get_by_role("button", name="Sign in").click()
        expect(guest).to_have_url(re.compile(r"/invite/?\?token="))
        join = guest.get_by_role("button", name="Join Tidal Works")
        join.dblclick()  # a double click still makes one membership
        expect(guest).to_have_url(re.compile(rf"/org/{slug}/studio$"))
        expect(guest.get_by_label("Switch organization")).to_contain_text("Tidal Works")
        guest.goto(link)  # the link is used up and says so
        expect(guest.get_by_role("alert")).to_contain_text("already been used")
    finally:
        fresh.close()

    page.reload()
    expect(page.get_by_role("row", name="Nico Editor")).to_contain_text(invited)
    expect(page.get_by_role("row", name=invited)).to_have_count(0)  # no longer pending
    count = app_server.run_python(
        "from sqlmodel import Session, select, func\n"
        "from core.db import get_engine\n"
        "from models import Membership, Organization\n"
        "with Session(get_engine()) as s:\n"
        f"    org = s.exec(select(Organization).where(Organization.slug == {slug!r})).one()\n"
        "    print(s.exec(select(func.count()).select_from(Membership).where(Membership.org_id == org.id)).one())\n"
    )
    assert count.strip() == "2"


def test_invite_opened_with_another_address_names_both(app_server, page):
    slug = _make_org(
        app_server, owner_email="mia.owner@example.test", name="Mismatch Media", plan="growth"
    )
    sign_in(page, app_server.base_url, "mia.owner@example.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(rf"/org/{slug}/studio$"))
    page.goto(f"{app_server.base_url}/org/{slug}/team")
    page.get_by_label("Email address").fill("intended@example.test")
    page.get_by_role("button", name="Send invite").click()
    expect(page.get_by_role("row", name="intended@example.test")).to_be_visible()
    link = _invite_link(app_server, "intended@example.test")

    page.goto(link)  # still signed in as the owner: another address
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("intended@example.test")
    expect(alert).to_contain_text("mia.owner@example.test")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("button", name="Join Mismatch Media")).to_have_count(0)
    screenshot(page, "invite-email-mismatch")


def test_seat_limit_notice_replaces_the_invite_form_at_the_limit(app_server, page):
    slug = _make_org(
        app_server,
        owner_email="fred.owner@example.test",
        name="Full House",
        plan="free",
        members=[("fay.member@example.test", "editor")],
    )
    sign_in(page, app_server.base_url, "fred.owner@example.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(rf"/org/{slug}/studio$"))
    page.goto(f"{app_server.base_url}/org/{slug}/team")
    notice = page.get_by_role("status").filter(has_text="Seat limit reached")
    expect(notice).to_contain_text("Free")
    expect(notice).to_contain_text("2")
    link = notice.get_by_role("link", name="Upgrade in Billing")
    expect(link).to_have_attribute("href", f"/org/{slug}/billing")
    expect(page.get_by_role("button", name="Send invite")).to_have_count(0)
    expect(page.get_by_text("Seats 2 of 2 (Free)")).to_be_visible()
    screenshot(page, "team-seat-limit")
