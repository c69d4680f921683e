"""Settings > Connections in the real app: an expired connection shows a red dot and Reconnect."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

_INSERT_CONNECTIONS = """
from datetime import timedelta
from sqlmodel import Session, select
from core.clock import utcnow
from core.crypto import encrypt
from core.db import get_engine
from models import OAuthConnection, Organization

with Session(get_engine()) as session:
    org = session.exec(select(Organization).where(Organization.slug == "acme")).one()
    if session.exec(select(OAuthConnection).where(OAuthConnection.org_id == org.id)).first() is None:
        session.add(OAuthConnection(
            org_id=org.id, provider_key="linkedin", account_id="li-1",
            account_label="Acme Inc. (LinkedIn page)", scopes=["openid", "profile", "w_member_social"],
            access_token_encrypted=encrypt("old-access"), refresh_token_encrypted=encrypt("old-refresh"),
            expires_at=utcnow() - timedelta(hours=2), status="expired",
            last_error="LinkedIn refused to renew the access (invalid_grant); it was probably revoked or expired. Reconnect.",
        ))
        session.add(OAuthConnection(
            org_id=org.id, provider_key="x", account_id="x-1", account_label="@acme",
            scopes=["tweet.read", "tweet.write", "users.read", "offline.access"],
            access_token_encrypted=encrypt("a"), refresh_token_encrypted=encrypt("r"),
            expires_at=utcnow() + timedelta(hours=20), status="active", last_refreshed_at=utcnow(),
        ))
        session.commit()
print("ok")
"""


def test_expired_connection_shows_red_dot_and_reconnect(app_server, page):
    assert app_server.run_python(_INSERT_CONNECTIONS).strip() == "ok"
    sign_in(page, app_server.base_url, "owner@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))

    nav = page.get_by_role("navigation", name="Areas")
    settings_link = nav.get_by_role("link", name="Settings (a connection needs reconnecting)")
    expect(settings_link).to_be_visible()
    settings_link.click()
    expect(page).to_have_url(re.compile(r"/org/acme/settings$"))

    expect(page.get_by_role("heading", name="Connections")).to_be_visible()
    expect(page.get_by_text("Acme Inc. (LinkedIn page)")).to_be_visible()
    expect(page.get_by_role("img", name="Needs reconnecting")).to_be_visible()
    expect(page.get_by_text("Expired", exact=True)).to_be_visible()
    expect(page.get_by_text("invalid_grant")).to_be_visible()
    expect(page.get_by_text("Scopes: openid, profile, w_member_social")).to_be_visible()
    reconnect = page.get_by_role("button", name="Reconnect", exact=True)
    expect(reconnect).to_have_count(1)  # only the expired one
    expect(page.get_by_text("@acme", exact=True)).to_be_visible()
    expect(page.get_by_text("Connected", exact=True)).to_be_visible()
    # Providers without credentials on this server are not available yet (no server variables
    # are named to a customer).
    expect(page.get_by_text("Not available yet — contact support.").first).to_be_visible()
    expect(page.get_by_text("LINKEDIN_CLIENT_SECRET", exact=True)).to_have_count(0)
    screenshot(page, "settings-connections-expired")

    # One click: without LinkedIn credentials on this server it says so at once.
    reconnect.click()
    expect(page.get_by_role("alert")).to_contain_text("LinkedIn is not available yet")
    expect(page).to_have_url(re.compile(r"/org/acme/settings$"))

    # The backend route checks the same and brings the browser back to the message.
    page.goto(app_server.backend_url + "/connections/linkedin/start?org=acme")
    expect(page).to_have_url(
        re.compile(
            r"/org/acme/settings\?provider=linkedin&connection_error=connection_not_configured"
        )
    )
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("LinkedIn is not available yet")
    expect(alert).to_be_in_viewport()
    screenshot(page, "settings-connections-reconnect-not-configured")


def test_viewer_sees_connections_without_actions_or_red_dot(app_server, page):
    assert app_server.run_python(_INSERT_CONNECTIONS).strip() == "ok"
    sign_in(page, app_server.base_url, "viewer@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    page.goto(app_server.base_url + "/org/acme/settings")
    expect(page.get_by_text("Acme Inc. (LinkedIn page)")).to_be_visible()
    expect(page.get_by_text("Owners and admins connect platforms.")).to_be_visible()
    expect(page.get_by_role("button", name="Reconnect", exact=True)).to_have_count(0)
    nav = page.get_by_role("navigation", name="Areas")
    expect(nav.get_by_role("link", name="Settings", exact=True)).to_be_visible()
