"""Organization security: single sign-on through the organization's own OpenID provider,
"require SSO", just-in-time membership and "require 2FA".

The OIDC steps (state, PKCE S256, nonce, code exchange, ID token checked against the issuer's
keys) are `services.oidc`'s, shared with Google sign-in; this module supplies the provider (the
owner's issuer, client ID and encrypted secret) and names each failure where it happens.

Invariants:
- The client secret is stored encrypted (`core.crypto.encrypt`) and never returned to a page.
- SSO can be turned on only after a successful test sign-in with the current issuer, client ID
  and secret; changing any of them turns SSO off until a new test passes.
- The IdP can sign people in only with an address on one of the organization's *verified*
  domains, verified by the IdP (`email_verified`): an IdP cannot claim someone else's address.
  A person is remembered by issuer + subject (`SsoIdentity`) after the first sign-in.
- Just-in-time membership uses the owner's default role, never owner, and counts against seats
  like any new member (`services.orgs.membership_add`).
- "Require SSO" refuses password sign-in for addresses on the organization's verified domains,
  except owners of that organization with 2FA on (break-glass). The owner turning it on must
  have 2FA. "Require 2FA" sends members without 2FA to enrol before they act in the organization.
- Every change of these settings writes an audit entry; the secret never appears in one.

Transactions: the settings services flush and leave the commit to the org-page skeleton. The
sign-in services (`sso_sign_in_begin`, `sso_test_begin`, `sso_complete`) own their unit of
work, as Google sign-in does: they commit the flow before the browser leaves, and the pending
session before the handoff.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from authlib.integrations.httpx_client import OAuthError
from authlib.oidc.core import CodeIDToken
from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core import routes
from core.clock import utcnow
from core.crypto import decrypt, encrypt
from core.settings import get_settings
from models import Membership, Organization, OrgSecurity, SsoIdentity, User
from models.enums import OrgRole
from services import domains, net_guard, oidc, policy
from services.audit import audit_record
from services.auth import SignInChallenge, sign_in_handoff_create
from services.error_codes import Code
from services.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    PlanLimitReached,
    ValidationFailed,
    error_with_code,
)
from services.orgs import membership_add, org_by_slug

SSO_SIGN_IN_PURPOSE = "sso_sign_in"
SSO_TEST_PURPOSE = "sso_test"
SSO_PROVIDER_KEY = "org_sso"
DEFAULT_ROLES: tuple[str, ...] = (OrgRole.admin.value, OrgRole.editor.value, OrgRole.viewer.value)
_MAX_ISSUER = 500
_MAX_CLIENT_ID = 255
_MAX_SECRET = 600
_MAX_NAME_LENGTH = 200
HELP_SLUG = "security-and-sso"


def sso_redirect_uri() -> str:
    """The one redirect URI to register at the identity provider, exactly."""
    return get_settings().backend_base_url + routes.API_SSO_CALLBACK


# --- errors, named where they happen ------------------------------------------------------------


def _state_invalid() -> DomainError:
    return error_with_code(
        Code.oauth_state_invalid,
        "This single sign-on link expired or was already used. Start again from the sign-in page.",
        http_status=400,
    )


def _not_configured(org: Organization | None = None) -> DomainError:
    name = org.name if org is not None else "This organization"
    return error_with_code(
        Code.sso_not_configured,
        f"{name} does not have single sign-on turned on. Sign in with your email and password, "
        "or ask an owner to set up single sign-on in Settings > Security & SSO.",
        base=NotFound,
    )


def _unreachable(issuer: str) -> DomainError:
    return error_with_code(
        Code.sso_issuer_unreachable,
        f"The identity provider at {issuer} could not be reached, or it does not publish an "
        f"OpenID configuration at {issuer}/.well-known/openid-configuration. Check the issuer "
        "URL (Okta: https://<your-org>.okta.com, Microsoft Entra: "
        "https://login.microsoftonline.com/<tenant>/v2.0, Keycloak: "
        "https://<host>/realms/<realm>), then test again.",
    )


def _issuer_not_public(issuer: str, reason: str) -> DomainError:
    return error_with_code(
        Code.sso_issuer_not_public,
        f"The identity provider at {issuer} was not contacted: {reason.rstrip('.')}. Single "
        "sign-on only talks to identity providers on the public internet, so this server "
        "cannot be pointed at its own network. Enter your provider's public issuer URL (for "
        "example https://<your-org>.okta.com); an operator can allow an intranet provider's "
        "host name with SSO_ALLOWED_HOSTS.",
        base=ValidationFailed,
        field="issuer",
    )


def sso_allowed_hosts() -> frozenset[str]:
    """Issuer host names the address guard lets through (``SSO_ALLOWED_HOSTS``)."""
    return net_guard.allowed_hosts_parse(get_settings().sso_allowed_hosts)


def _issuer_mismatch(entered: str, named: str) -> DomainError:
    return error_with_code(
        Code.sso_issuer_mismatch,
        f"The issuer URL entered is {entered}, but that provider's configuration names its "
        f"issuer {named[:200]}. Enter {named[:200]} as the issuer URL, save, then test again.",
    )


def _redirect_mismatch() -> DomainError:
    return error_with_code(
        Code.sso_redirect_mismatch,
        f"The identity provider refused this app's redirect URI. Register exactly "
        f"{sso_redirect_uri()} as a sign-in redirect URI of this app at your identity provider "
        "(no trailing slash, same http/https), then test again.",
    )


def _token_refused(error: OAuthError) -> DomainError:
    said = f"{error.error or ''} {error.description or ''}".strip()
    if "redirect" in said.lower():
        return _redirect_mismatch()
    if (error.error or "") in {"invalid_client", "unauthorized_client"}:
        return error_with_code(
            Code.sso_client_rejected,
            "The identity provider refused this app's client ID or client secret. Copy both "
            "again from the app registration at your identity provider, save them here, then "
            "test again.",
        )
    return error_with_code(
        Code.sso_token_failed,
        f"The identity provider did not confirm this sign-in ({said[:120] or 'no reason given'}). "
        "Start again; if it keeps failing, check the app registration at your identity "
        "provider.",
    )


def _id_token_invalid() -> DomainError:
    return error_with_code(
        Code.sso_id_token_invalid,
        "The identity provider's answer could not be verified against its published keys, its "
        "issuer and this app's client ID, so nobody was signed in. Check the client ID and "
        "issuer in Settings > Security & SSO, then try again.",
    )


def _when(timestamp: int) -> str:
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M:%S} UTC"


def _id_token_expired(claim: str, at: int, now: int) -> DomainError:
    if claim == "exp":
        what = f"had already expired when it arrived (it expired at {_when(at)})"
    else:
        what = f"was issued in the future (at {_when(at)})"
    return error_with_code(
        Code.sso_id_token_expired,
        f"The identity provider's sign-in token {what}; this server's time is {_when(now)}. "
        "The clocks of the identity provider and this server disagree (clock skew): make sure "
        "both keep time automatically (NTP), then try again.",
    )


def _email_missing() -> DomainError:
    return error_with_code(
        Code.sso_email_missing,
        "The identity provider did not share an email address, so nobody can be signed in. "
        "Ask your identity provider's administrator to release the email claim (scope "
        "“email”) to this app.",
        base=PermissionDenied,
    )


def _email_unverified(email: str) -> DomainError:
    return error_with_code(
        Code.sso_email_unverified,
        f"The identity provider has not verified {email} (email_verified is not true), so it "
        "cannot be used to sign in. Ask your identity provider's administrator to mark the "
        "address verified.",
        base=PermissionDenied,
    )


def _domain_not_verified(email: str, org: Organization) -> DomainError:
    domain = email.rpartition("@")[2]
    return error_with_code(
        Code.sso_domain_not_verified,
        f"{domain} is not a verified domain of {org.name}, so its identity provider cannot sign "
        f"in {email}. An owner can verify {domain} in Settings > Security & SSO.",
        base=PermissionDenied,
    )


# Messages for codes the sign-in page receives in its URL from the callback (never free text).
SIGN_IN_ERROR_MESSAGES: dict[str, str] = {
    Code.sso_not_configured.value: "Single sign-on is not turned on for that organization. Sign "
    "in with your email and password.",
    Code.sso_issuer_unreachable.value: "Your organization's identity provider could not be "
    "reached. Try again in a minute, or ask an owner to check Settings > Security & SSO.",
    Code.sso_issuer_mismatch.value: "Your organization's single sign-on settings name the wrong "
    "issuer. Ask an owner to test them in Settings > Security & SSO.",
    Code.sso_issuer_not_public.value: "Your organization's single sign-on settings point to an "
    "address this app does not contact. Ask an owner to check Settings > Security & SSO.",
    Code.sso_redirect_mismatch.value: "Your organization's identity provider refused this app's "
    "redirect URI. Ask an owner to register the redirect URI shown in Settings > Security & SSO.",
    Code.sso_client_rejected.value: "Your organization's identity provider refused this app's "
    "client ID or secret. Ask an owner to check Settings > Security & SSO.",
    Code.sso_token_failed.value: "Your identity provider did not confirm the sign-in. Start again.",
    Code.sso_id_token_invalid.value: "Your identity provider's answer could not be verified, so "
    "you were not signed in. Start again; if it repeats, tell an owner.",
    Code.sso_id_token_expired.value: "Your identity provider's sign-in token had expired when it "
    "arrived: its clock and this server's disagree (clock skew). Try again; if it repeats, tell "
    "an owner.",
    Code.sso_email_missing.value: "Your identity provider did not share an email address. Ask "
    "its administrator to release the email claim to this app.",
    Code.sso_email_unverified.value: "Your identity provider has not verified your email "
    "address, so it cannot be used to sign in here. Ask its administrator.",
    Code.sso_domain_not_verified.value: "Your email's domain is not verified by that "
    "organization, so its identity provider cannot sign you in. Ask an owner to verify it in "
    "Settings > Security & SSO.",
    Code.sso_required.value: "Your organization requires single sign-on for your address. "
    "Continue with single sign-on below, with your work email.",
    Code.sso_denied.value: "The identity provider did not sign you in (cancelled or refused). "
    "Try again, or sign in with your email and password if your organization allows it.",
    Code.sso_failed.value: "Single sign-on failed. Try again in a moment.",
    Code.sso_account_conflict.value: "This account was being signed in twice at the same time, or "
    "is linked to another identity. Start again.",
    Code.plan_limit_reached.value: "Your organization has used every seat its plan allows, so "
    "single sign-on could not add you. Ask an owner to free a seat or upgrade in Billing.",
}


# --- settings -----------------------------------------------------------------------------------


def _require_manage(session: Session, actor: User, org_id: int) -> None:
    policy.require(
        policy.actor_for(session=session, user=actor, org_id=org_id),
        policy.Action.sso_manage,
        policy.target_for(session=session, org_id=org_id),
    )


# Built once: the 2FA requirement is asked on every page open.
_ORG_SECURITY = select(OrgSecurity).where(OrgSecurity.org_id == bindparam("org_id"))


def org_security_get(*, session: Session, org_id: int) -> OrgSecurity | None:
    """The organization's security settings row, or None when nothing was ever set."""
    return session.exec(_ORG_SECURITY, params={"org_id": org_id}).first()


def _security_row(session: Session, org_id: int) -> OrgSecurity:
    """The settings row, locked; created on first use (a concurrent creator wins, we reread)."""
    query = (
        select(OrgSecurity)
        .where(OrgSecurity.org_id == org_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = session.exec(query).first()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = OrgSecurity(org_id=org_id)
            session.add(row)
            session.flush()
        return row
    except IntegrityError:
        return session.exec(query).one()


def issuer_clean(issuer: str) -> str:
    """The issuer URL as stored: https (http only on loopback outside production), no slash end.

    Raises:
        ValidationFailed: `sso_settings_invalid`, naming what is wrong.
    """
    value = (issuer or "").strip().rstrip("/")
    if value.endswith("/.well-known/openid-configuration"):
        value = value[: -len("/.well-known/openid-configuration")]

    def invalid(why: str) -> DomainError:
        return error_with_code(
            Code.sso_settings_invalid,
            f"The issuer URL {why}. Enter your identity provider's issuer, for example "
            "https://example.okta.com or https://login.microsoftonline.com/<tenant>/v2.0.",
            base=ValidationFailed,
            field="issuer",
        )

    if not value:
        raise invalid("is empty")
    if len(value) > _MAX_ISSUER:
        raise invalid(f"is longer than {_MAX_ISSUER} characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise invalid("is not a URL") from None
    if not parts.hostname or parts.query or parts.fragment or parts.username:
        raise invalid("must be a plain https address without query, fragment or user name")
    allowed = sso_allowed_hosts()
    if parts.scheme == "http" and not (
        not get_settings().is_production
        and (_is_loopback(parts.hostname) or parts.hostname.rstrip(".") in allowed)
    ):
        raise invalid("must start with https://")
    if parts.scheme not in ("http", "https"):
        raise invalid("must start with https://")
    try:  # the shared address guard: never an issuer inside this server's own network
        net_guard.url_check(value, allowed_hosts=allowed)
    except net_guard.HostUnresolved:
        pass  # perhaps not published yet: "Test connection" names it if it stays that way
    except net_guard.AddressRefused as refused:
        raise _issuer_not_public(value, str(refused)) from None
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sso_settings_save(
    *,
    session: Session,
    actor: User,
    org_id: int,
    issuer: str,
    client_id: str,
    client_secret: str,
    default_role: str,
) -> OrgSecurity:
    """Save the IdP settings. A blank secret keeps the stored one. Owner only. No commit.

    Changing the issuer, client ID or secret clears the last successful test and turns SSO
    (and "require SSO") off until a new test passes.

    Raises:
        ValidationFailed: `sso_settings_invalid` naming the field.
    """
    _require_manage(session, actor, org_id)
    issuer_value = issuer_clean(issuer)
    client_id_value = (client_id or "").strip()
    secret_value = (client_secret or "").strip()
    role = (default_role or "").strip().lower()
    if not client_id_value or len(client_id_value) > _MAX_CLIENT_ID:
        raise error_with_code(
            Code.sso_settings_invalid,
            "Enter the client ID of this app's registration at your identity provider (up to "
            f"{_MAX_CLIENT_ID} characters).",
            base=ValidationFailed,
            field="client_id",
        )
    if len(secret_value) > _MAX_SECRET:
        raise error_with_code(
            Code.sso_settings_invalid,
            f"The client secret is longer than {_MAX_SECRET} characters. Copy it again.",
            base=ValidationFailed,
            field="client_secret",
        )
    if role not in DEFAULT_ROLES:
        raise error_with_code(
            Code.sso_settings_invalid,
            "Choose the role new people get when they first sign in: admin, editor or viewer "
            "(never owner).",
            base=ValidationFailed,
            field="default_role",
        )
    row = _security_row(session, org_id)
    if not secret_value and not row.sso_client_secret_encrypted:
        raise error_with_code(
            Code.sso_settings_invalid,
            "Enter the client secret of this app's registration at your identity provider.",
            base=ValidationFailed,
            field="client_secret",
        )
    connection_changed = (
        issuer_value != row.sso_issuer
        or client_id_value != row.sso_client_id
        or bool(secret_value and secret_value != _secret_or_blank(row))
    )
    row.sso_issuer, row.sso_client_id = issuer_value, client_id_value
    if secret_value:
        row.sso_client_secret_encrypted = encrypt(secret_value)
    role_changed = role != row.sso_default_role
    row.sso_default_role = role
    was_enabled = row.sso_enabled
    if connection_changed:
        row.sso_tested_at = None
        row.sso_tested_email = ""
        row.sso_enabled = False
        row.require_sso = False
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    audit_record(
        session=session,
        action="sso.settings_saved",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="org_security",
        target_id=row.id,
        details={
            "issuer": issuer_value,
            "client_id": client_id_value,
            "secret_changed": bool(secret_value),
            "default_role": role,
            "default_role_changed": role_changed,
            "turned_off_until_tested": bool(connection_changed and was_enabled),
        },
    )
    return row


def _secret_or_blank(row: OrgSecurity) -> str:
    """The stored secret, or "" when it cannot be read any more (SECRET_KEY changed)."""
    try:
        return _secret(row)
    except ValueError:
        return ""


def _secret(row: OrgSecurity) -> str:
    if not row.sso_client_secret_encrypted:
        return ""
    return decrypt(row.sso_client_secret_encrypted)


def _provider(row: OrgSecurity) -> oidc.OidcProvider:
    issuer = row.sso_issuer
    return oidc.OidcProvider(
        discovery_url=issuer + "/.well-known/openid-configuration",
        client_id=row.sso_client_id,
        client_secret=_secret(row),
        unavailable=lambda: _unreachable(issuer),
        token_refused=_token_refused,
        id_token_invalid=_id_token_invalid,
        id_token_expired=_id_token_expired,
        expected_issuer=issuer,
        issuer_mismatch=lambda named: _issuer_mismatch(issuer, named),
        allowed_hosts=sso_allowed_hosts(),
        address_refused=lambda reason: _issuer_not_public(issuer, reason),
    )


def _configured(row: OrgSecurity | None) -> bool:
    return bool(row and row.sso_issuer and row.sso_client_id and row.sso_client_secret_encrypted)


def sso_connection_check(*, session: Session, actor: User, org_id: int) -> str:
    """Reach the issuer now: its OpenID configuration (naming the same issuer) and its keys.

    Returns a sentence saying what was found. Owner only. Writes nothing.

    Raises:
        DomainError: `sso_not_configured`, `sso_issuer_unreachable`, `sso_issuer_mismatch`.
    """
    _require_manage(session, actor, org_id)
    row = org_security_get(session=session, org_id=org_id)
    if not _configured(row):
        raise error_with_code(
            Code.sso_not_configured,
            "Save the issuer URL, client ID and client secret first, then test the connection.",
            base=ValidationFailed,
        )
    provider = _provider(row)
    oidc.oidc_cache_clear()  # a test asks the provider now, not a cached answer
    metadata = oidc.provider_metadata(provider)
    keys = oidc.provider_keys(provider, metadata)
    return (
        f"Reached {row.sso_issuer}: its OpenID configuration and {len(keys.keys)} signing "
        f"key{'s' if len(keys.keys) != 1 else ''} were found. Now select “Test sign-in” to sign "
        "in once at your identity provider; that also checks the client secret and the "
        "redirect URI."
    )


def sso_enable_set(*, session: Session, actor: User, org_id: int, enabled: bool) -> OrgSecurity:
    """Turn single sign-on on (only after a successful test) or off. Owner only. No commit.

    Raises:
        DomainError: `sso_not_configured`, `sso_not_tested`.
    """
    _require_manage(session, actor, org_id)
    row = _security_row(session, org_id)
    if enabled:
        if not _configured(row):
            raise error_with_code(
                Code.sso_not_configured,
                "Save the issuer URL, client ID and client secret before turning single "
                "sign-on on.",
                base=ValidationFailed,
            )
        if row.sso_tested_at is None:
            raise error_with_code(
                Code.sso_not_tested,
                "Test single sign-on before turning it on: select “Test sign-in”, sign in at "
                "your identity provider, and come back here.",
                base=Conflict,
            )
    if row.sso_enabled == enabled:
        return row  # a repeated click changes nothing and writes no second entry
    row.sso_enabled = enabled
    if not enabled:
        row.require_sso = False
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    audit_record(
        session=session,
        action="sso.enabled" if enabled else "sso.disabled",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="org_security",
        target_id=row.id,
        details={"issuer": row.sso_issuer},
    )
    return row


def _own_2fa_first(actor: User, what: str) -> None:
    if actor.totp_enabled_at is None:
        raise error_with_code(
            Code.two_factor_required,
            f"Turn on two-factor authentication for your own account first (Account > "
            f"Security), then {what}. {_OWN_2FA_REASON[what]}",
            base=Conflict,
        )


_OWN_2FA_REASON = {
    "require single sign-on": "Owners keep password sign-in under “Require SSO” only with "
    "2FA, so you keep a way in if the identity provider fails.",
    "require it of every member": "Otherwise you would be sent to enrol yourself first.",
}


def require_sso_set(*, session: Session, actor: User, org_id: int, required: bool) -> OrgSecurity:
    """Turn "require SSO" on or off. Owner only, with 2FA on; SSO must be on and a domain
    verified. No commit."""
    _require_manage(session, actor, org_id)
    row = _security_row(session, org_id)
    if required:
        if not row.sso_enabled:
            raise error_with_code(
                Code.sso_not_tested,
                "Turn single sign-on on before requiring it.",
                base=Conflict,
            )
        if not any(d.verified_at for d in domains.domains_list(session=session, org_id=org_id)):
            raise error_with_code(
                Code.sso_domain_not_verified,
                "Verify at least one email domain first: “Require SSO” applies to addresses on "
                "the organization's verified domains.",
                base=Conflict,
            )
        _own_2fa_first(actor, "require single sign-on")
    if row.require_sso == required:
        return row
    row.require_sso = required
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    audit_record(
        session=session,
        action="sso.require_sso_on" if required else "sso.require_sso_off",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="org_security",
        target_id=row.id,
    )
    return row


def require_2fa_set(*, session: Session, actor: User, org_id: int, required: bool) -> OrgSecurity:
    """Turn "require 2FA" on or off. Owner only; the owner must have 2FA on. No commit."""
    _require_manage(session, actor, org_id)
    row = _security_row(session, org_id)
    if required:
        _own_2fa_first(actor, "require it of every member")
    if row.require_2fa == required:
        return row
    row.require_2fa = required
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    audit_record(
        session=session,
        action="security.require_2fa_on" if required else "security.require_2fa_off",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="org_security",
        target_id=row.id,
        details={"members_without_2fa": len(members_without_2fa(session=session, org_id=org_id))},
    )
    return row


# --- 2FA ----------------------------------------------------------------------------------------


def members_with_2fa(*, session: Session, org_id: int) -> set[int]:
    """User ids of the organization's members who have 2FA on."""
    return set(
        session.exec(
            select(Membership.user_id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.org_id == org_id, User.totp_enabled_at.is_not(None))  # type: ignore[union-attr]
        )
    )


def members_without_2fa(*, session: Session, org_id: int) -> list[str]:
    """Emails of members without 2FA, for the settings page and the audit entry."""
    return sorted(
        session.exec(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id, User.totp_enabled_at.is_(None))  # type: ignore[union-attr]
        )
    )


def two_factor_gate(*, session: Session, user: User, org: Organization) -> None:
    """Raise `two_factor_required` when the organization requires 2FA and `user` has none."""
    if user.totp_enabled_at is not None:
        return
    row = org_security_get(session=session, org_id=org.id)
    if row is not None and row.require_2fa:
        raise error_with_code(
            Code.two_factor_required,
            f"{org.name} requires two-factor authentication of every member. Turn it on in "
            "Account > Security (it takes a minute with an authenticator app), then come back.",
            base=PermissionDenied,
        )


def org_requires_2fa_of(*, session: Session, user: User, org: Organization) -> bool:
    """Whether `user` must enrol in 2FA before acting in `org`."""
    try:
        two_factor_gate(session=session, user=user, org=org)
    except DomainError:
        return True
    return False


# --- sign-in routing and "require SSO" ----------------------------------------------------------


@dataclass(frozen=True)
class SsoRoute:
    org_slug: str
    org_name: str
    required: bool


def sso_route_for_email(*, session: Session, email: str) -> SsoRoute | None:
    """The organization whose IdP signs in `email` (its domain verified, SSO on), or None."""
    org_id = domains.verified_domain_org_id(session=session, email=email)
    if org_id is None:
        return None
    row = org_security_get(session=session, org_id=org_id)
    org = session.get(Organization, org_id)
    if row is None or not row.sso_enabled or org is None or org.deleted_at is not None:
        return None
    return SsoRoute(org_slug=org.slug, org_name=org.name, required=row.require_sso)


def password_sign_in_check(*, session: Session, user: User, method: str = "password") -> None:
    """Refuse a password (or Google) sign-in that "require SSO" forbids, once it is proven.

    Owners of the requiring organization with 2FA on keep the password path (break-glass).

    Raises:
        DomainError: `sso_required`.
    """
    route = sso_route_for_email(session=session, email=user.email)
    if route is None or not route.required:
        return
    org = org_by_slug(session=session, slug=route.org_slug)
    role = session.exec(
        select(Membership.role).where(Membership.org_id == org.id, Membership.user_id == user.id)
    ).first()
    if role == OrgRole.owner.value and user.totp_enabled_at is not None:
        return
    domain = domains.email_domain(user.email)
    break_glass = (
        " Owners keep password sign-in only with two-factor authentication on."
        if role == OrgRole.owner.value
        else ""
    )
    raise error_with_code(
        Code.sso_required,
        f"{org.name} requires single sign-on for {domain} addresses, so {method} sign-in is "
        f"off for {user.email}. Select “Continue with single sign-on” to sign in through "
        f"{org.name}'s identity provider.{break_glass}",
        base=PermissionDenied,
        org_slug=org.slug,
    )


# --- the flows ----------------------------------------------------------------------------------


def _enabled_org(session: Session, org_slug: str) -> tuple[Organization, OrgSecurity]:
    try:
        org = org_by_slug(session=session, slug=org_slug)
    except DomainError:
        raise _not_configured() from None
    row = org_security_get(session=session, org_id=org.id)
    if not _configured(row) or not row.sso_enabled:
        raise _not_configured(org)
    return org, row


def sso_sign_in_begin(
    *, session: Session, org_slug: str, next_path: str, browser_binding: str = ""
) -> str:
    """Start a sign-in at the organization's IdP; returns the URL to send the browser to.

    Owns its unit of work (commits the flow). Raises `sso_not_configured`, or the IdP's
    `sso_issuer_unreachable` / `sso_issuer_mismatch`.
    """
    org, row = _enabled_org(session, org_slug)
    provider = _provider(row)
    return oidc.flow_begin(
        session=session,
        provider=provider,
        metadata=oidc.provider_metadata(provider),
        purpose=SSO_SIGN_IN_PURPOSE,
        provider_key=SSO_PROVIDER_KEY,
        redirect_uri=sso_redirect_uri(),
        next_path=next_path,
        browser_binding=browser_binding,
        org_id=org.id,
    )


def sso_test_begin(
    *, session: Session, actor: User, org_slug: str, browser_binding: str = ""
) -> str:
    """Start the owner's test sign-in (before SSO is on). Owns its unit of work."""
    org = org_by_slug(session=session, slug=org_slug)
    _require_manage(session, actor, org.id)
    row = org_security_get(session=session, org_id=org.id)
    if not _configured(row):
        raise error_with_code(
            Code.sso_not_configured,
            "Save the issuer URL, client ID and client secret first, then test.",
            base=ValidationFailed,
        )
    provider = _provider(row)
    oidc.oidc_cache_clear()
    return oidc.flow_begin(
        session=session,
        provider=provider,
        metadata=oidc.provider_metadata(provider),
        purpose=SSO_TEST_PURPOSE,
        provider_key=SSO_PROVIDER_KEY,
        redirect_uri=sso_redirect_uri(),
        next_path=routes.org_sso_settings(org.slug),
        browser_binding=browser_binding,
        org_id=org.id,
        user_id=actor.id,
    )


@dataclass(frozen=True)
class SsoOutcome:
    """Where a callback leads: a sign-in handoff, or back to the settings page after a test."""

    purpose: str
    org_slug: str
    next_path: str
    challenge: SignInChallenge | None = None
    test_error_code: str = ""
    joined: bool = False


def _email_verified(claims: CodeIDToken) -> bool:
    value = claims.get("email_verified")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _verified_claims(row: OrgSecurity, code: str, code_verifier: str, nonce: str) -> CodeIDToken:
    if not code:
        raise error_with_code(
            Code.sso_token_failed,
            "The identity provider sent no sign-in code back. Start again.",
        )
    provider = _provider(row)
    metadata = oidc.provider_metadata(provider)
    token = oidc.code_exchange(
        provider=provider,
        metadata=metadata,
        redirect_uri=sso_redirect_uri(),
        code=code,
        code_verifier=code_verifier,
    )
    return oidc.id_token_claims(provider=provider, metadata=metadata, token=token, nonce=nonce)


def _claimed_email(claims: CodeIDToken) -> str:
    email = str(claims.get("email") or "").strip().lower()
    if not email or "@" not in email or len(email) > 320:
        raise _email_missing()
    if not _email_verified(claims):
        raise _email_unverified(email)
    return email


def _user_for_sso(
    session: Session, org: Organization, row: OrgSecurity, claims: CodeIDToken
) -> User:
    """The person behind these claims: by issuer + subject, else by a verified-domain email."""
    now = utcnow()
    subject = str(claims["sub"])[:255]
    identity = session.exec(
        select(SsoIdentity)
        .where(
            SsoIdentity.org_id == org.id,
            SsoIdentity.issuer == row.sso_issuer,
            SsoIdentity.subject == subject,
        )
        .with_for_update()
    ).first()
    if identity is not None:
        user = session.get(User, identity.user_id)
        if user is None:
            raise _state_invalid()
        identity.last_sign_in_at = now
        session.add(identity)
        return user
    email = _claimed_email(claims)
    if not domains.domain_is_verified_for(session=session, org_id=org.id, email=email):
        raise _domain_not_verified(email, org)
    user = session.exec(
        select(User)
        .where(User.email == email)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    created = user is None
    revoked = 0
    if user is None:
        user = User(
            email=email,
            name=str(claims.get("name") or "").strip()[:_MAX_NAME_LENGTH],
            password_hash=None,
            email_verified_at=now,
        )
        session.add(user)
        session.flush()
    elif user.email_verified_at is None:
        # Nobody had proven this address; the organization that owns the domain just did.
        revoked += oidc.claim_unproven_account(session, user=user, now=now)
    session.add(
        SsoIdentity(
            org_id=org.id,
            user_id=user.id,
            issuer=row.sso_issuer,
            subject=subject,
            last_sign_in_at=now,
        )
    )
    session.flush()
    audit_record(
        session=session,
        action="sso.user_created" if created else "sso.identity_linked",
        actor_user_id=user.id,
        org_id=org.id,
        target_type="user",
        target_id=user.id,
        details={"email": email, "sessions_revoked": revoked},
    )
    return user


def _jit_join(session: Session, org: Organization, row: OrgSecurity, user: User) -> bool:
    """Add the person with the default role unless already a member; True when added."""
    existing = session.exec(
        select(Membership.id).where(Membership.org_id == org.id, Membership.user_id == user.id)
    ).first()
    if existing is not None:
        return False
    role = row.sso_default_role if row.sso_default_role in DEFAULT_ROLES else OrgRole.viewer.value
    try:
        membership = membership_add(session=session, org_id=org.id, user_id=user.id, role=role)
    except PlanLimitReached as error:
        raise PlanLimitReached(
            f"{org.name} has used every seat its plan allows ({error.used} of {error.allowed}), "
            f"so single sign-on could not add {user.email}. Ask an owner of {org.name} to free "
            "a seat or upgrade in Billing.",
            limit=error.limit,
            used=error.used,
            allowed=error.allowed,
            plan=error.plan,
        ) from None
    audit_record(
        session=session,
        action="sso.jit_joined",
        actor_user_id=user.id,
        org_id=org.id,
        target_type="membership",
        target_id=membership.id,
        details={"email": user.email, "role": role},
    )
    return True


def _test_record(
    session: Session, org_id: int, user_id: int | None, *, email: str, error_code: str
) -> None:
    """Store a test sign-in's outcome on the settings (its own unit of work)."""
    row = _security_row(session, org_id)
    now = utcnow()
    row.sso_last_test_at = now
    row.sso_last_test_error = error_code[:64]
    if not error_code:
        row.sso_tested_at = now
        row.sso_tested_email = email[:320]
    session.add(row)
    audit_record(
        session=session,
        action="sso.tested",
        actor_user_id=user_id,
        org_id=org_id,
        target_type="org_security",
        target_id=row.id,
        details={"ok": not error_code, "error_code": error_code, "email": email},
    )
    session.commit()


def sso_complete(
    *,
    session: Session,
    state: str,
    code: str,
    ip_address: str = "",
    user_agent: str = "",
    browser_binding: str | None = None,
) -> SsoOutcome:
    """Finish an SSO callback: a sign-in (with JIT membership) or an owner's test.

    Args:
        session: Database session; this service owns the unit of work (the state's use is
            committed before the IdP's token endpoint is called; then the result).
        state: The `state` query parameter the IdP sent back.
        code: The authorization code.
        ip_address: Client address, recorded on the session.
        user_agent: Client user agent, recorded on the session.
        browser_binding: The pre-auth cookie of the callback request ("" when absent).

    Returns:
        The outcome. A test always returns (its error code, if any, is recorded and returned);
        a sign-in returns the handoff challenge.

    Raises:
        DomainError: `oauth_state_invalid`, `sign_in_other_browser`, `sso_not_configured`, each
            IdP failure by name (`sso_issuer_unreachable`, `sso_redirect_mismatch`,
            `sso_client_rejected`, `sso_token_failed`, `sso_id_token_invalid`,
            `sso_id_token_expired`), `sso_email_missing`, `sso_email_unverified`,
            `sso_domain_not_verified`, `plan_limit_reached` (seats), `account_locked`,
            `sso_account_conflict`.
    """
    flow = oidc.flow_consume(
        session=session,
        state=state,
        purposes=[SSO_SIGN_IN_PURPOSE, SSO_TEST_PURPOSE],
        browser_binding=browser_binding,
        state_invalid=_state_invalid,
    )
    org = session.get(Organization, flow.org_id) if flow.org_id is not None else None
    if org is None or org.deleted_at is not None:
        raise _not_configured()
    row = org_security_get(session=session, org_id=org.id)
    if flow.purpose == SSO_TEST_PURPOSE:
        return _complete_test(session, org, row, flow, code)
    if not _configured(row) or not row.sso_enabled:
        raise _not_configured(org)
    claims = _verified_claims(row, code, flow.code_verifier, flow.nonce)
    try:
        user = _user_for_sso(session, org, row, claims)
        joined = _jit_join(session, org, row, user)
        challenge = sign_in_handoff_create(
            session=session,
            user=user,
            ip_address=ip_address,
            user_agent=user_agent,
            browser_binding=browser_binding or "",
        )
        session.commit()
    except IntegrityError as exc:  # the same person signed in twice at once
        session.rollback()
        raise error_with_code(
            Code.sso_account_conflict,
            "This account was being signed in twice at the same time. Start again from the "
            "sign-in page.",
            base=Conflict,
        ) from exc
    except PlanLimitReached as error:
        session.rollback()
        audit_record(
            session=session,
            action="sso.jit_refused",
            actor_user_id=None,
            org_id=org.id,
            target_type="organization",
            target_id=org.id,
            details={"email": str(claims.get("email") or "")[:320], "reason": "seats"},
        )
        session.commit()
        raise error
    except DomainError:
        session.rollback()
        raise
    next_path = flow.redirect_after
    if not routes.is_safe_next(next_path) or next_path == routes.INDEX:
        next_path = routes.org_home(org.slug)
    return SsoOutcome(
        purpose=SSO_SIGN_IN_PURPOSE,
        org_slug=org.slug,
        next_path=next_path,
        challenge=challenge,
        joined=joined,
    )


def _complete_test(
    session: Session, org: Organization, row: OrgSecurity | None, flow, code: str
) -> SsoOutcome:
    back = routes.org_sso_settings(org.slug)
    if not _configured(row):
        return SsoOutcome(SSO_TEST_PURPOSE, org.slug, back, test_error_code="sso_not_configured")
    email, error_code = "", ""
    try:
        claims = _verified_claims(row, code, flow.code_verifier, flow.nonce)
        email = _claimed_email(claims)
    except DomainError as error:
        error_code = error.code
    session.rollback()
    _test_record(session, org.id, flow.user_id, email=email, error_code=error_code)
    return SsoOutcome(SSO_TEST_PURPOSE, org.slug, back, test_error_code=error_code)


def sso_callback_error(*, session: Session, state: str, error: str, description: str) -> SsoOutcome:
    """The IdP sent the browser back with `?error=`: name it, and record it on a test.

    Consumes the flow (so the link cannot be replayed). Owns its unit of work.
    """
    said = f"{error} {description}".lower()
    if "redirect" in said:
        code = Code.sso_redirect_mismatch.value
    elif error == "access_denied":
        code = Code.sso_denied.value
    else:
        code = Code.sso_failed.value
    try:
        flow = oidc.flow_consume(
            session=session,
            state=state,
            purposes=[SSO_SIGN_IN_PURPOSE, SSO_TEST_PURPOSE],
            browser_binding=None,
            state_invalid=_state_invalid,
        )
    except DomainError:
        return SsoOutcome(SSO_SIGN_IN_PURPOSE, "", routes.INDEX, test_error_code=code)
    org = session.get(Organization, flow.org_id) if flow.org_id is not None else None
    if flow.purpose == SSO_TEST_PURPOSE and org is not None:
        _test_record(session, org.id, flow.user_id, email="", error_code=code)
        return SsoOutcome(
            SSO_TEST_PURPOSE, org.slug, routes.org_sso_settings(org.slug), test_error_code=code
        )
    return SsoOutcome(
        SSO_SIGN_IN_PURPOSE, org.slug if org else "", routes.INDEX, test_error_code=code
    )


def sso_test_failure_message(code: str, issuer: str) -> str:
    """What the owner is told about a failed test sign-in (from its recorded code)."""
    if code == Code.sso_issuer_unreachable.value:
        return _unreachable(issuer).message
    if code == Code.sso_issuer_not_public.value:
        return _issuer_not_public(issuer, "its address is not a public one").message
    if code == Code.sso_redirect_mismatch.value:
        return _redirect_mismatch().message
    if code == Code.sso_id_token_invalid.value:
        return _id_token_invalid().message
    if code == Code.sso_email_missing.value:
        return _email_missing().message
    owner_messages = {
        Code.sso_issuer_mismatch.value: "The provider's configuration names a different issuer "
        "than the one entered. Select “Test connection” to see which, then correct it.",
        Code.sso_client_rejected.value: "The identity provider refused the client ID or secret. "
        "Copy both again from the app registration, save, then test again.",
        Code.sso_id_token_expired.value: "The sign-in token had expired when it arrived: the "
        "clocks of the identity provider and this server disagree (clock skew). Make sure both "
        "keep time automatically (NTP), then test again.",
        Code.sso_email_unverified.value: "The identity provider did not mark your email address "
        "verified (email_verified). Ask its administrator to, then test again.",
        Code.sso_denied.value: "The sign-in at the identity provider was cancelled or refused. "
        "Check that your account is assigned to this app there, then test again.",
        Code.sso_token_failed.value: "The identity provider did not confirm the sign-in. Check "
        "the app registration there, then test again.",
    }
    return owner_messages.get(
        code, "The test sign-in failed. Select “Test connection”, then test again."
    )
