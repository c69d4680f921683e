"""Organization single sign-on against a loopback OpenID provider (tests/sso_idp.py): the owner's
setup and test, sign-in with just-in-time membership, failures named where they happen, seats,
"require SSO" and "require 2FA".

The app's routes are driven with Starlette's TestClient (backend at http://testserver); the
browser's trip to the provider is a real HTTP request to it, followed by hand.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from core import routes
from core.clock import utcnow
from core.crypto import encrypt, hash_password
from core.settings import reset_settings_cache
from creative_studio.api import build_api
from models import AuditLogEntry, Membership, OrgDomain, OrgSecurity, SsoIdentity, User
from services import auth as auth_service
from services import oidc
from services import sso as sso_service
from services.errors import DomainError, PlanLimitReached
from tests.factories import add_member, make_org, make_user, signed_in_cookie
from tests.sso_idp import CLIENT_ID, CLIENT_SECRET, FakeIdp, running_idp

BACKEND = "http://testserver"
CALLBACK = BACKEND + routes.API_SSO_CALLBACK
DOMAIN = "acme-corp.test"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeIdp]:
    with running_idp() as idp:
        yield idp


@pytest.fixture
def idp(engine, provider) -> Iterator[FakeIdp]:
    saved = os.environ.get("API_BASE_URL")
    saved_hosts = os.environ.get("SSO_ALLOWED_HOSTS")
    os.environ["API_BASE_URL"] = BACKEND
    os.environ["SSO_ALLOWED_HOSTS"] = "127.0.0.1"  # the loopback IdP passes the address guard
    reset_settings_cache()
    oidc.oidc_cache_clear()
    provider.reset()
    provider.registered_redirects = [CALLBACK]
    try:
        yield provider
    finally:
        if saved is None:
            os.environ.pop("API_BASE_URL", None)
        else:
            os.environ["API_BASE_URL"] = saved
        if saved_hosts is None:
            os.environ.pop("SSO_ALLOWED_HOSTS", None)
        else:
            os.environ["SSO_ALLOWED_HOSTS"] = saved_hosts
        reset_settings_cache()
        oidc.oidc_cache_clear()


@pytest.fixture
def client(idp) -> Iterator[TestClient]:
    with TestClient(build_api(), base_url=BACKEND, follow_redirects=False) as test_client:
        yield test_client


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def _local(url: str) -> str:
    assert url.startswith(BACKEND + "/"), url
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _acme(engine, *, plan_key: str = "growth", enabled: bool = True, role: str = "editor"):
    """Acme Corp with its owner, SSO set up at the loopback IdP and acme-corp.test verified."""
    owner = make_user(engine, "olivia@" + DOMAIN, "Olivia Owner")
    org = make_org(engine, owner, "Acme Corp", slug="acme-corp", plan_key=plan_key)
    with Session(engine) as session:
        session.add(
            OrgSecurity(
                org_id=org.id,
                sso_issuer="",
                sso_client_id=CLIENT_ID,
                sso_client_secret_encrypted=encrypt(CLIENT_SECRET),
                sso_default_role=role,
                sso_enabled=enabled,
                sso_tested_at=utcnow() if enabled else None,
            )
        )
        session.add(
            OrgDomain(org_id=org.id, domain=DOMAIN, verification_token="t", verified_at=utcnow())
        )
        session.commit()
    return owner, org


def _point_at(engine, org, idp: FakeIdp) -> None:
    with Session(engine) as session:
        row = session.exec(select(OrgSecurity).where(OrgSecurity.org_id == org.id)).one()
        row.sso_issuer = idp.issuer
        session.add(row)
        session.commit()


def _to_idp(client: TestClient, start: str) -> str:
    """GET an SSO start route, then the IdP's /authorize; returns where the IdP sends back."""
    response = client.get(start)
    assert response.status_code == 303, response.text
    authorize = httpx.get(response.headers["location"], follow_redirects=False)
    assert authorize.status_code == 302, authorize.text
    return authorize.headers["location"]


def _sign_in_error(response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert routes.SIGN_IN + "?" in location, location
    return _query(location)["error"]


def _audit(engine) -> list[str]:
    with Session(engine) as session:
        return [entry.action for entry in session.exec(select(AuditLogEntry)).all()]


# --- the owner sets it up -------------------------------------------------------------------------


def test_owner_saves_tests_and_turns_on_single_sign_on(client, idp, engine):
    owner = make_user(engine, "olivia@" + DOMAIN, "Olivia Owner")
    org = make_org(engine, owner, "Acme Corp", slug="acme-corp")
    with Session(engine, expire_on_commit=False) as session:
        row = sso_service.sso_settings_save(
            session=session,
            actor=owner,
            org_id=org.id,
            issuer=idp.issuer + "/",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            default_role="viewer",
        )
        session.commit()
        assert row.sso_issuer == idp.issuer and CLIENT_SECRET not in row.sso_client_secret_encrypted
        found = sso_service.sso_connection_check(session=session, actor=owner, org_id=org.id)
        assert idp.issuer in found and "1 signing key" in found
        with pytest.raises(DomainError) as not_tested:
            sso_service.sso_enable_set(session=session, actor=owner, org_id=org.id, enabled=True)
        assert not_tested.value.code == "sso_not_tested"
        session.rollback()
        cookie = signed_in_cookie(session, owner)

    # The owner's test sign-in: through the IdP and back to the settings page.
    client.cookies.set(*cookie.split("=", 1))
    idp.identity = {**idp.identity, "sub": "idp-sub-olivia", "email": "olivia@" + DOMAIN}
    callback = _to_idp(client, routes.sso_test("acme-corp"))
    assert callback.startswith(CALLBACK + "?")
    sent = idp.authorize_requests[-1]
    assert sent["redirect_uri"] == CALLBACK and sent["code_challenge_method"] == "S256"
    assert sent["state"] and sent["nonce"] and sent["client_id"] == CLIENT_ID
    back = client.get(_local(callback))
    assert back.status_code == 303
    assert back.headers["location"].endswith("/org/acme-corp/settings/sso?test=ok")

    with Session(engine, expire_on_commit=False) as session:
        row = session.exec(select(OrgSecurity)).one()
        assert row.sso_tested_at is not None and row.sso_tested_email == "olivia@" + DOMAIN
        sso_service.sso_enable_set(session=session, actor=owner, org_id=org.id, enabled=True)
        sso_service.sso_enable_set(session=session, actor=owner, org_id=org.id, enabled=True)
        session.commit()
        # The test signed nobody in and created no identity or membership.
        assert session.exec(select(SsoIdentity)).all() == []
    actions = _audit(engine)
    assert actions.count("sso.settings_saved") == 1 and actions.count("sso.tested") == 1
    assert actions.count("sso.enabled") == 1  # a repeated click writes no second entry

    # Changing the secret turns SSO off until a new test passes.
    with Session(engine, expire_on_commit=False) as session:
        row = sso_service.sso_settings_save(
            session=session,
            actor=owner,
            org_id=org.id,
            issuer=idp.issuer,
            client_id=CLIENT_ID,
            client_secret="another-secret",
            default_role="viewer",
        )
        session.commit()
        assert not row.sso_enabled and row.sso_tested_at is None


def test_only_the_owner_changes_sso_and_the_issuer_must_be_https(engine, idp):
    owner, org = _acme(engine)
    admin = add_member(engine, org, "adam@" + DOMAIN, "admin")
    with Session(engine) as session:
        with pytest.raises(DomainError) as denied:
            sso_service.sso_enable_set(session=session, actor=admin, org_id=org.id, enabled=False)
        assert denied.value.code == "role_forbidden" and "owner" in denied.value.message
        for issuer in ["http://idp.example.com", "ftp://x", "https://", ""]:
            with pytest.raises(DomainError) as bad:
                sso_service.sso_settings_save(
                    session=session,
                    actor=owner,
                    org_id=org.id,
                    issuer=issuer,
                    client_id="c",
                    client_secret="s",
                    default_role="editor",
                )
            assert bad.value.code == "sso_settings_invalid"
        with pytest.raises(DomainError) as owner_role:
            sso_service.sso_settings_save(
                session=session,
                actor=owner,
                org_id=org.id,
                issuer="https://idp.example.com",
                client_id="c",
                client_secret="s",
                default_role="owner",
            )
        assert "never owner" in owner_role.value.message


def test_an_unreachable_issuer_is_named_with_the_address_tried(engine, idp):
    owner, org = _acme(engine)
    with Session(engine) as session:
        row = session.exec(select(OrgSecurity)).one()
        row.sso_issuer = "http://127.0.0.1:9"  # nothing listens on the discard port
        session.add(row)
        session.commit()
        with pytest.raises(DomainError) as caught:
            sso_service.sso_connection_check(session=session, actor=owner, org_id=org.id)
    assert caught.value.code == "sso_issuer_unreachable"
    assert "http://127.0.0.1:9/.well-known/openid-configuration" in caught.value.message


# --- sign-in and just-in-time membership ----------------------------------------------------------


def test_a_new_person_signs_in_through_the_idp_and_joins_with_the_default_role(client, idp, engine):
    _, org = _acme(engine, role="viewer")
    _point_at(engine, org, idp)

    callback = _to_idp(client, routes.sso_start("acme-corp"))
    handoff = client.get(_local(callback))
    assert handoff.status_code == 303
    assert handoff.headers["location"].startswith(BACKEND + routes.API_AUTH_SESSION + "?")
    assert _query(handoff.headers["location"])["next"] == "/org/acme-corp/studio"
    activated = client.get(_local(handoff.headers["location"]))
    assert activated.status_code == 303 and routes.SESSION_COOKIE in activated.headers.get(
        "set-cookie", ""
    )

    with Session(engine) as session:
        nina = session.exec(select(User).where(User.email == "nina@" + DOMAIN)).one()
        assert nina.email_verified_at is not None and nina.password_hash is None
        membership = session.exec(select(Membership).where(Membership.user_id == nina.id)).one()
        assert membership.org_id == org.id and membership.role == "viewer"
        identity = session.exec(select(SsoIdentity)).one()
        assert (identity.user_id, identity.subject) == (nina.id, "idp-sub-nina")
    assert {"sso.user_created", "sso.jit_joined"} <= set(_audit(engine))

    # Next time: found by subject, not joined twice, even after the IdP renames the address.
    idp.identity = {**idp.identity, "email": "nina.n@" + DOMAIN}
    callback = _to_idp(client, routes.sso_start("acme-corp", "/org/acme-corp/team"))
    again = client.get(_local(callback))
    assert _query(again.headers["location"])["next"] == "/org/acme-corp/team"
    with Session(engine) as session:
        assert len(session.exec(select(Membership).where(Membership.org_id == org.id)).all()) == 2
    assert _audit(engine).count("sso.jit_joined") == 1


def test_the_state_is_single_use_and_bound_to_the_browser(client, idp, engine):
    _, org = _acme(engine)
    _point_at(engine, org, idp)
    callback = _to_idp(client, routes.sso_start("acme-corp"))
    with TestClient(build_api(), base_url=BACKEND, follow_redirects=False) as other_browser:
        assert _sign_in_error(other_browser.get(_local(callback))) == "sign_in_other_browser"
    assert client.get(_local(callback)).status_code == 303
    assert _sign_in_error(client.get(_local(callback))) == "oauth_state_invalid"


def test_sso_that_is_off_is_refused_at_the_start(client, idp, engine):
    _, org = _acme(engine, enabled=False)
    _point_at(engine, org, idp)
    assert _sign_in_error(client.get(routes.sso_start("acme-corp"))) == "sso_not_configured"
    assert _sign_in_error(client.get(routes.sso_start("nobody"))) == "sso_not_configured"


# --- failures named where they happen -------------------------------------------------------------


def test_a_redirect_uri_the_idp_does_not_know_is_named_with_the_uri_to_register(
    client, idp, engine
):
    owner, org = _acme(engine)
    _point_at(engine, org, idp)
    idp.registered_redirects = ["https://studio.example.com/auth/sso/callback"]

    # A person signing in: the IdP sends the browser back with an error.
    callback = _to_idp(client, routes.sso_start("acme-corp"))
    assert _query(callback)["error"] == "invalid_request"
    assert _sign_in_error(client.get(_local(callback))) == "sso_redirect_mismatch"

    # The owner's test: recorded, and the settings page says which URI to register.
    with Session(engine) as session:
        cookie = signed_in_cookie(session, owner)
    client.cookies.set(*cookie.split("=", 1))
    callback = _to_idp(client, routes.sso_test("acme-corp"))
    back = client.get(_local(callback))
    assert back.headers["location"].endswith("?test=sso_redirect_mismatch")
    with Session(engine) as session:
        row = session.exec(select(OrgSecurity)).one()
        assert row.sso_last_test_error == "sso_redirect_mismatch"
        message = sso_service.sso_test_failure_message(row.sso_last_test_error, row.sso_issuer)
    assert f"Register exactly {CALLBACK}" in message


def test_a_redirect_uri_changed_between_authorize_and_token_is_named(client, idp, engine):
    _, org = _acme(engine)
    _point_at(engine, org, idp)
    callback = _to_idp(client, routes.sso_start("acme-corp"))
    idp.registered_redirects = ["https://elsewhere.example.com/cb"]  # re-registered meanwhile
    assert _sign_in_error(client.get(_local(callback))) == "sso_redirect_mismatch"
    assert idp.token_refusals == ["redirect_uri not registered"]


def test_an_expired_id_token_is_named_as_clock_skew_with_both_times(client, idp, engine):
    _, org = _acme(engine)
    _point_at(engine, org, idp)
    now = int(time.time())
    idp.id_token_overrides = {"iat": now - 7200, "exp": now - 3600}
    callback = _to_idp(client, routes.sso_start("acme-corp"))
    params = _query(callback)
    with Session(engine) as session:
        with pytest.raises(DomainError) as caught:
            sso_service.sso_complete(
                session=session, state=params["state"], code=params["code"], browser_binding=None
            )
    assert caught.value.code == "sso_id_token_expired"
    assert "clock skew" in caught.value.message and "expired at" in caught.value.message
    assert "this server's time is" in caught.value.message
    with Session(engine) as session:
        assert session.exec(select(User).where(User.email == "nina@" + DOMAIN)).first() is None

    # Through the route, the sign-in page gets the code and explains it.
    callback = _to_idp(client, routes.sso_start("acme-corp"))
    assert _sign_in_error(client.get(_local(callback))) == "sso_id_token_expired"
    assert "clock skew" in sso_service.SIGN_IN_ERROR_MESSAGES["sso_id_token_expired"]


def test_a_token_signed_by_another_key_or_for_another_client_is_refused(client, idp, engine):
    _, org = _acme(engine)
    _point_at(engine, org, idp)
    idp.sign_with_forger_key = True
    callback = _to_idp(client, routes.sso_start("acme-corp"))
    assert _sign_in_error(client.get(_local(callback))) == "sso_id_token_invalid"
    idp.sign_with_forger_key = False
    idp.id_token_overrides = {"aud": "someone-else"}
    callback = _to_idp(client, routes.sso_start("acme-corp"))
    assert _sign_in_error(client.get(_local(callback))) == "sso_id_token_invalid"


def test_an_email_the_idp_did_not_verify_or_on_an_unverified_domain_is_refused(client, idp, engine):
    _, org = _acme(engine)
    _point_at(engine, org, idp)
    idp.identity = {**idp.identity, "email_verified": False}
    callback = _to_idp(client, routes.sso_start("acme-corp"))
    assert _sign_in_error(client.get(_local(callback))) == "sso_email_unverified"

    # An IdP cannot sign in an address on a domain the organization has not verified.
    idp.identity = {**idp.identity, "email_verified": True, "email": "ceo@bigbank.test"}
    callback = _to_idp(client, routes.sso_start("acme-corp"))
    assert _sign_in_error(client.get(_local(callback))) == "sso_domain_not_verified"
    with Session(engine) as session:
        assert session.exec(select(User).where(User.email == "ceo@bigbank.test")).first() is None


def test_seat_limit_refuses_a_just_in_time_join_with_the_usual_limit(client, idp, engine):
    _, org = _acme(engine, plan_key="free")  # Free: 2 seats
    add_member(engine, org, "eddie@" + DOMAIN, "editor")
    _point_at(engine, org, idp)
    callback = _to_idp(client, routes.sso_start("acme-corp"))
    params = _query(callback)
    with Session(engine) as session:
        with pytest.raises(PlanLimitReached) as caught:
            sso_service.sso_complete(
                session=session, state=params["state"], code=params["code"], browser_binding=None
            )
    assert caught.value.limit == "seats" and (caught.value.used, caught.value.allowed) == (2, 2)
    assert "Acme Corp has used every seat" in caught.value.message
    assert "upgrade in Billing" in caught.value.message
    with Session(engine) as session:
        assert session.exec(select(User).where(User.email == "nina@" + DOMAIN)).first() is None
        assert len(session.exec(select(Membership)).all()) == 2
    assert "sso.jit_refused" in _audit(engine)

    callback = _to_idp(client, routes.sso_start("acme-corp"))
    assert _sign_in_error(client.get(_local(callback))) == "plan_limit_reached"


# --- "require SSO" ------------------------------------------------------------------------------


def _with_password(engine, user: User, password: str) -> None:
    with Session(engine) as session:
        row = session.get(User, user.id)
        row.password_hash = hash_password(password)
        session.add(row)
        session.commit()


def test_require_sso_refuses_password_sign_in_but_keeps_the_owners_break_glass(engine, idp):
    owner, org = _acme(engine)
    member = add_member(engine, org, "eddie@" + DOMAIN, "editor")
    outsider = add_member(engine, org, "contractor@freelance.test", "editor")
    password = "correct horse battery staple 9"
    for user in (owner, member, outsider):
        _with_password(engine, user, password)
    with Session(engine) as session:
        with pytest.raises(DomainError) as needs_2fa:
            sso_service.require_sso_set(session=session, actor=owner, org_id=org.id, required=True)
        assert needs_2fa.value.code == "two_factor_required"
        session.rollback()
        row = session.get(User, owner.id)
        row.totp_enabled_at = utcnow()
        session.add(row)
        session.commit()
        sso_service.require_sso_set(
            session=session, actor=session.get(User, owner.id), org_id=org.id, required=True
        )
        session.commit()
    assert "sso.require_sso_on" in _audit(engine)

    with Session(engine) as session:
        with pytest.raises(DomainError) as refused:
            auth_service.sign_in_password(
                session=session, email="eddie@" + DOMAIN, password=password
            )
        session.rollback()
    assert refused.value.code == "sso_required"
    assert "Acme Corp requires single sign-on" in refused.value.message
    assert "Continue with single sign-on" in refused.value.message
    with Session(engine) as session:  # Google sign-in is refused the same way
        with pytest.raises(DomainError) as google:
            sso_service.password_sign_in_check(
                session=session, user=session.get(User, member.id), method="Google"
            )
    assert google.value.code == "sso_required" and "Google sign-in is off" in google.value.message
    with Session(engine) as session:
        # A wrong password is still just a wrong password (nothing about SSO leaks before it).
        with pytest.raises(DomainError) as wrong:
            auth_service.sign_in_password(session=session, email="eddie@" + DOMAIN, password="x")
        assert wrong.value.code == "invalid_credentials"
        session.rollback()
        # Break-glass: the owner with 2FA still signs in with a password (then the code).
        challenge = auth_service.sign_in_password(
            session=session, email="olivia@" + DOMAIN, password=password
        )
        assert challenge.mfa_required
        # An address on another domain is not affected.
        assert auth_service.sign_in_password(
            session=session, email="contractor@freelance.test", password=password
        )
        assert sso_service.sso_route_for_email(session=session, email="x@" + DOMAIN).required


# --- "require 2FA" ------------------------------------------------------------------------------


def test_require_2fa_needs_the_owner_to_have_it_and_gates_members_without_it(engine, idp):
    owner, org = _acme(engine)
    member = add_member(engine, org, "eddie@" + DOMAIN, "editor")
    with Session(engine) as session:
        with pytest.raises(DomainError) as owner_first:
            sso_service.require_2fa_set(session=session, actor=owner, org_id=org.id, required=True)
        assert owner_first.value.code == "two_factor_required"
        session.rollback()
        row = session.get(User, owner.id)
        row.totp_enabled_at = utcnow()
        session.commit()
        sso_service.require_2fa_set(
            session=session, actor=session.get(User, owner.id), org_id=org.id, required=True
        )
        session.commit()
        entry = session.exec(
            select(AuditLogEntry).where(AuditLogEntry.action == "security.require_2fa_on")
        ).one()
        assert entry.details["members_without_2fa"] == 1
        org_row = session.get(type(org), org.id)
        with pytest.raises(DomainError) as gated:
            sso_service.two_factor_gate(
                session=session, user=session.get(User, member.id), org=org_row
            )
        assert gated.value.code == "two_factor_required"
        assert "Account > Security" in gated.value.message
        sso_service.two_factor_gate(session=session, user=session.get(User, owner.id), org=org_row)
        assert sso_service.members_with_2fa(session=session, org_id=org.id) == {owner.id}


# --- the address guard (shared with Competitor Intel) ---------------------------------------------


def test_an_issuer_on_a_private_or_local_address_is_refused_when_saved(engine, idp, monkeypatch):
    owner, org = _acme(engine)
    monkeypatch.setenv("SSO_ALLOWED_HOSTS", "")  # nothing is allowed: as in production
    reset_settings_cache()
    with Session(engine) as session:
        for issuer, reason in (
            ("https://10.0.0.5/realms/acme", "private or local address (10.0.0.5)"),
            ("https://169.254.169.254", "private or local address (169.254.169.254)"),  # metadata
            ("https://localhost:8443/realms/acme", "private or local address"),
            ("https://[::ffff:192.168.1.4]", "private or local address (::ffff:192.168.1.4)"),
            (idp.issuer, "Port"),  # the loopback IdP itself once it is not allowed: an odd port
        ):
            with pytest.raises(DomainError) as refused:
                sso_service.sso_settings_save(
                    session=session,
                    actor=owner,
                    org_id=org.id,
                    issuer=issuer,
                    client_id="c",
                    client_secret="s",
                    default_role="editor",
                )
            error = refused.value
            assert error.code == "sso_issuer_not_public", issuer
            assert reason in error.message, error.message  # names what it resolved to
            assert "public internet" in error.message and "SSO_ALLOWED_HOSTS" in error.message
        session.rollback()
        row = session.exec(select(OrgSecurity).where(OrgSecurity.org_id == org.id)).one()
        assert row.sso_issuer == ""  # nothing was saved
    assert idp.discovery_hits == 0  # and the provider was never asked


def test_a_stored_private_issuer_is_not_contacted_by_the_connection_test(engine, idp, monkeypatch):
    owner, org = _acme(engine)
    _point_at(engine, org, idp)  # saved while 127.0.0.1 was allowed...
    monkeypatch.setenv("SSO_ALLOWED_HOSTS", "")  # ...then the operator removed it
    reset_settings_cache()
    with Session(engine) as session:
        with pytest.raises(DomainError) as refused:
            sso_service.sso_connection_check(session=session, actor=owner, org_id=org.id)
    assert refused.value.code == "sso_issuer_not_public"
    assert "127.0.0.1" in refused.value.message
    assert idp.discovery_hits == 0


def test_discovery_naming_private_key_or_token_urls_is_refused_before_they_are_fetched(
    client, engine, idp
):
    owner, org = _acme(engine)
    _point_at(engine, org, idp)
    idp.discovery_overrides = {"jwks_uri": "https://169.254.169.254/latest/meta-data/jwks"}
    with Session(engine) as session:
        with pytest.raises(DomainError) as keys_refused:
            sso_service.sso_connection_check(session=session, actor=owner, org_id=org.id)
    assert keys_refused.value.code == "sso_issuer_not_public"
    assert "169.254.169.254" in keys_refused.value.message

    # A token endpoint inside the network: the sign-in stops before the code is sent there.
    idp.discovery_overrides = {"token_endpoint": "https://10.20.30.40/token"}
    oidc.oidc_cache_clear()
    callback = _to_idp(client, routes.sso_start("acme-corp"))
    landed = client.get(_local(callback))
    assert landed.status_code == 303
    assert "sso_issuer_not_public" in landed.headers["location"]
    assert idp.token_requests == []
    with Session(engine) as session:
        assert session.exec(select(User).where(User.email == "nina@" + DOMAIN)).first() is None
