"""Settings > Security & SSO and the "require 2FA" gate, through the page handlers as the browser
calls them (tests/state/conftest.py builds the state tree with a signed-in cookie)."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from core.clock import utcnow
from models import Membership, OrgDomain, OrgSecurity, User
from services import totp as totp_service
from state.session import SessionState
from state.settings import SecurityState
from state.sign_in import SignInState
from state.sso_settings import SsoSettingsState
from state.team import TeamState
from tests.factories import add_member, make_org, make_user, signed_in_cookie
from tests.state.conftest import build_page_state, call_handler


@pytest.fixture
def page_state(engine):
    return build_page_state


@pytest.fixture
def call():
    return call_handler


DOMAIN = "acme-corp.test"


def _acme(session):
    owner = make_user(session, "olivia@" + DOMAIN, "Olivia Owner")
    org = make_org(session, owner, "Acme Corp", slug="acme-corp")
    session.commit()
    return owner, org


def test_owner_saves_settings_and_the_secret_never_reaches_the_page(session, page_state, call):
    owner, org = _acme(session)
    cookie = signed_in_cookie(session, owner)
    page = page_state(SsoSettingsState, cookie=cookie, path="/org/acme-corp/settings/sso")
    asyncio.run(call(page, "load"))
    assert page.error == "" and page.redirect_uri.endswith("/auth/sso/callback")
    assert page.turn_on_reason.startswith("Save the issuer URL")

    asyncio.run(
        call(
            page,
            "save_settings",
            {
                "issuer": "https://acme.okta.example",
                "client_id": "0oa-client",
                "client_secret": "super-secret-value",
                "default_role": "viewer",
            },
        )
    )
    assert page.error == "" and "Test sign-in" in page.notice
    assert page.secret_saved and page.issuer == "https://acme.okta.example"
    assert page.default_role == "viewer"
    assert "super-secret-value" not in str(page.dict())
    assert page.turn_on_reason == "Run “Test sign-in” successfully first."

    # Turning on before a test: refused with what to do, not a silently disabled button.
    asyncio.run(call(page, "set_sso_enabled", True))
    assert page.error_code == "sso_not_tested" and "Test sign-in" in page.error
    assert not page.sso_enabled

    # A forged call with nonsense arguments is a message, never a crash.
    asyncio.run(call(page, "verify_domain", "'; drop table"))
    assert page.error == "That item was not found. Reload the page and try again."
    asyncio.run(call(page, "save_settings", "not a form"))
    assert page.error_code == "sso_settings_invalid"


def test_admins_get_an_explanation_instead_of_the_settings(session, page_state, call):
    _, org = _acme(session)
    admin = add_member(session, org, "adam@" + DOMAIN, "admin")
    session.commit()
    page = page_state(
        SsoSettingsState,
        cookie=signed_in_cookie(session, admin),
        path="/org/acme-corp/settings/sso",
    )
    asyncio.run(call(page, "load"))
    assert page.error_code == "role_forbidden" and "owner" in page.error
    assert page.issuer == "" and page.org_address == ""
    asyncio.run(call(page, "set_require_2fa", True))
    assert page.error_code == "role_forbidden"


def test_a_member_without_2fa_is_sent_to_enrol_and_cannot_act_until_then(session, page_state, call):
    owner, org = _acme(session)
    member = add_member(session, org, "eddie@" + DOMAIN, "admin")
    owner_cookie = signed_in_cookie(session, owner)
    owner.totp_enabled_at = utcnow()
    session.add(owner)
    session.commit()
    owner_page = page_state(
        SsoSettingsState, cookie=owner_cookie, path="/org/acme-corp/settings/sso"
    )
    asyncio.run(call(owner_page, "load"))
    asyncio.run(call(owner_page, "set_require_2fa", True))
    assert owner_page.require_2fa and owner_page.error == ""
    assert "eddie@" + DOMAIN in owner_page.without_2fa_line

    cookie = signed_in_cookie(session, member)
    # Opening any page of the organization sends the member to Settings, saying why.
    on_team = page_state(SessionState, cookie=cookie, path="/org/acme-corp/team")
    sent = asyncio.run(call(on_team, "load_org"))
    assert "/org/acme-corp/settings" in str(sent) and "two-factor" in str(sent)
    # A page that opens in one event (Team) sends them there too, and shows nothing.
    team = page_state(TeamState, cookie=cookie, path="/org/acme-corp/team")
    sent = asyncio.run(call(team, "load"))
    assert "/org/acme-corp/settings" in str(sent) and "two-factor" in str(sent)
    assert team.members == []
    # Acting (here: inviting someone) is refused with the same reason.
    asyncio.run(call(team, "send_invite", {"email": "pat@" + DOMAIN}))
    assert team.error_code == "two_factor_required" and "Account > Security" in team.error
    # On Settings the member can enrol...
    security = page_state(SecurityState, cookie=cookie, path="/org/acme-corp/settings")
    asyncio.run(call(security, "load"))
    assert security.error == ""
    asyncio.run(call(security, "start_enrolment"))
    assert security.enrolling and security.error == ""
    secret = security.enrolment_key
    code = totp_service.pyotp.TOTP(secret).now()
    asyncio.run(call(security, "confirm_enrolment", {"code": code}))
    assert security.totp_enabled, security.error
    # ...and then acts in the organization as before.
    asyncio.run(call(team, "load"))
    assert team.error == ""
    member_row = next(row for row in team.members if row.email == "eddie@" + DOMAIN)
    assert member_row.two_factor
    assert not page_state(SessionState, cookie=cookie, path="/org/acme-corp/team").org_not_found


def test_sign_in_page_routes_a_verified_domain_to_its_idp(session, page_state, call):
    owner, org = _acme(session)
    session.add(
        OrgSecurity(
            org_id=org.id,
            sso_issuer="https://acme.okta.example",
            sso_client_id="c",
            sso_client_secret_encrypted="x",
            sso_enabled=True,
            sso_tested_at=utcnow(),
        )
    )
    session.add(
        OrgDomain(org_id=org.id, domain=DOMAIN, verification_token="t", verified_at=utcnow())
    )
    session.commit()
    page = page_state(SignInState, path="/sign-in")
    went = asyncio.run(call(page, "submit_sso", {"email": "nina@ACME-corp.test"}))
    assert "/auth/sso/start?org=acme-corp" in str(went)
    none = asyncio.run(call(page, "submit_sso", {"email": "someone@elsewhere.test"}))
    assert none is None and "elsewhere.test" in page.error and "password" in page.error
    assert session.exec(select(Membership).where(Membership.user_id == owner.id)).one()
    assert session.exec(select(User)).all()


def test_the_owner_reads_on_the_sso_page_that_the_dns_recheck_lost_a_domains_record(
    session, page_state, call
):
    owner, org = _acme(session)
    now = utcnow()
    session.add(
        OrgDomain(
            org_id=org.id,
            domain=DOMAIN,
            verification_token="t1",
            verified_at=None,
            unverified_at=now,
            last_error="Marked unverified on 2026-11-21 03:03 UTC: the TXT record was missing.",
        )
    )
    session.add(
        OrgDomain(
            org_id=org.id,
            domain="acme-eu.test",
            verification_token="t2",
            verified_at=now,
            recheck_failures=1,
            last_error="(1 of 3 failed checks in a row)",
        )
    )
    session.commit()
    page = page_state(
        SsoSettingsState,
        cookie=signed_in_cookie(session, owner),
        path="/org/acme-corp/settings/sso",
    )
    asyncio.run(call(page, "load"))
    rows = {row.domain: row for row in page.domains}
    assert rows[DOMAIN].status == "Unverified by DNS check" and not rows[DOMAIN].verified
    assert rows[DOMAIN].problem.startswith("Marked unverified on")
    assert rows["acme-eu.test"].status == "Verified, record missing"
    assert rows["acme-eu.test"].verified and rows["acme-eu.test"].warning
    assert f"{DOMAIN} is no longer verified" in page.domains_alert
    assert "acme-eu.test was missing in the latest scheduled DNS check" in page.domains_alert
    assert page.domains_alert.endswith("then select “Verify now”.")
