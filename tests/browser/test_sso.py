"""Single sign-on in the browser: an owner configures the organization's identity provider (a
real OpenID provider on loopback, tests/sso_idp.py), tests it and turns it on; then a new person
signs in through it from the sign-in page and lands in the organization.

The domain is marked verified directly in the database: the app server's DNS resolver is the
machine's, and the TXT check itself is covered against a loopback DNS server in
tests/unit/test_domains.py.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot, sign_in
from tests.sso_idp import CLIENT_ID, CLIENT_SECRET, running_idp

pytestmark = pytest.mark.browser

DOMAIN = "globex-sso.test"


def _org_with_verified_domain(app_server) -> str:
    code = f"""
from sqlmodel import Session
from core.clock import utcnow
from core.crypto import hash_password
from core.db import get_engine
from models import OrgDomain, User
from services import orgs

with Session(get_engine()) as s:
    owner = User(email="grace@{DOMAIN}", name="Grace Owner",
                 password_hash=hash_password({DEV_PASSWORD!r}), email_verified_at=utcnow())
    s.add(owner); s.flush()
    org = orgs.org_create(session=s, owner=owner, name="Globex SSO", plan_key="growth")
    s.add(OrgDomain(org_id=org.id, domain="{DOMAIN}", verification_token="seeded",
                    verified_at=utcnow()))
    s.commit()
    print(org.slug)
"""
    return app_server.run_python(code).strip()


def test_owner_sets_up_sso_and_a_new_person_signs_in_through_it(app_server, browser, page):
    slug = _org_with_verified_domain(app_server)
    with running_idp() as idp:
        idp.identity = {
            "sub": "idp-grace",
            "email": f"grace@{DOMAIN}",
            "email_verified": True,
            "name": "Grace Owner",
        }
        sign_in(page, app_server.base_url, f"grace@{DOMAIN}", DEV_PASSWORD)
        expect(page).to_have_url(re.compile(rf"/org/{slug}/studio$"))
        page.goto(f"{app_server.base_url}/org/{slug}/settings")
        page.get_by_role("link", name="Open Security & SSO").click()
        expect(page.get_by_role("heading", name="Security & SSO", level=1)).to_be_visible()
        expect(
            page.get_by_text("Save the issuer URL, client ID and client secret first.")
        ).to_be_visible()

        # The exact redirect URI to register, shown on the page: register it at the IdP.
        redirect_uri = page.locator("code").filter(has_text="/auth/sso/callback").first.inner_text()
        assert redirect_uri.endswith("/auth/sso/callback")
        idp.registered_redirects = [redirect_uri]

        page.get_by_label("Issuer URL").fill(idp.issuer)
        page.get_by_label("Client ID").fill(CLIENT_ID)
        page.get_by_label("Client secret").fill(CLIENT_SECRET)
        page.get_by_label("Role of people who join through SSO").click()
        page.get_by_role("option", name="Viewer").click()
        page.get_by_role("button", name="Save settings").click()
        expect(page.get_by_text(re.compile("^Saved. Select “Test connection”"))).to_be_visible()
        expect(page.get_by_text("Run “Test sign-in” successfully first.")).to_be_visible()

        page.get_by_role("button", name="Test connection").click()
        expect(page.get_by_text(re.compile(r"^Reached http://127\.0\.0\.1"))).to_be_visible()

        page.get_by_role("button", name="Test sign-in").click()
        expect(page).to_have_url(re.compile(r"/settings/sso\?test=ok$"))
        expect(page.get_by_text(re.compile("^Test sign-in succeeded: "))).to_be_visible()
        expect(page.get_by_text(re.compile(rf"as grace@{re.escape(DOMAIN)}\.$"))).to_be_visible()

        page.get_by_role("button", name="Turn single sign-on on").click()
        expect(page.get_by_text(re.compile("^Single sign-on is on"))).to_be_visible()
        expect(page.get_by_label("Require SSO for addresses on verified domains")).to_be_visible()
        screenshot(page, "sso-settings-owner")
        page.set_viewport_size({"width": 375, "height": 800})
        screenshot(page, "sso-settings-owner-375")

        # A new person, in a browser of their own.
        newcomer = browser.new_context(viewport={"width": 1280, "height": 860})
        newcomer.set_default_timeout(60_000)
        try:
            visitor = newcomer.new_page()
            idp.identity = {
                "sub": "idp-nina",
                "email": f"nina@{DOMAIN}",
                "email_verified": True,
                "name": "Nina Newcomer",
            }
            visitor.goto(app_server.base_url + "/sign-in")
            visitor.get_by_role("button", name="Use single sign-on (SSO)").click()
            visitor.get_by_label("Work email").fill(f"nina@{DOMAIN}")
            visitor.set_viewport_size({"width": 375, "height": 800})
            screenshot(visitor, "sso-sign-in-375")
            visitor.get_by_role("button", name="Continue with single sign-on").click()
            expect(visitor).to_have_url(re.compile(rf"/org/{slug}/studio$"))
            visitor.set_viewport_size({"width": 1280, "height": 860})
            expect(visitor.get_by_role("heading", name="Creative Studio", level=1)).to_be_visible()
            expect(visitor.get_by_text("You can browse, not run")).to_be_visible()  # a viewer
            screenshot(visitor, "sso-newcomer-landed")
            visitor.goto(f"{app_server.base_url}/org/{slug}/team")
            expect(visitor.get_by_role("row", name="Nina Newcomer")).to_contain_text("Viewer")
            screenshot(visitor, "sso-newcomer-team")
        finally:
            newcomer.close()
