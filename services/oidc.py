"""Google sign-in with OpenID Connect (authorization code + state + PKCE S256 + nonce), via Authlib.

`google_sign_in_begin` stores the flow server-side (state hashed, PKCE verifier encrypted,
nonce) and returns Google's authorization URL. `google_sign_in_complete` consumes the state
once, exchanges the code with the verifier, validates the ID token against Google's JWKS
(signature, issuer, audience, expiry, nonce), finds, links or creates the user and starts the
same sign-in handoff as a password sign-in, so 2FA and lockout apply unchanged.

Login CSRF: the flow is bound to the browser that started it. The start route passes the
browser's pre-auth cookie (`services.auth.browser_binding_cookie`), whose keyed hash is stored
with the flow; the callback must present the same cookie, or it is refused with
`sign_in_other_browser` before Google is even asked (an attacker's callback link opened in
someone else's browser signs nobody in). The pending session it starts carries the same
binding, so `/auth/session` checks it again.

The OIDC steps themselves (discovery, flow state, code exchange, ID-token checks) are written
once for any provider (`OidcProvider`): Google is one, each organization's own identity provider
(`services.sso`) is another. Each provider names its own failures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from authlib.common.security import is_secure_transport
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.clock import as_utc, utcnow
from core.crypto import decrypt, encrypt, hash_token, new_token, token_hash_candidates
from core.http import HTTP_ERRORS
from core.settings import get_settings
from models import OAuthFlowState, User, UserSession
from services import net_guard
from services.audit import audit_record
from services.auth import (
    SignInChallenge,
    browser_binding_matches,
    browser_binding_usable,
    sign_in_handoff_create,
    sign_in_other_browser_error,
)
from services.error_codes import Code
from services.errors import Conflict, DomainError, PermissionDenied, error_with_code

GOOGLE_SIGN_IN_PURPOSE = "google_sign_in"
GOOGLE_PROVIDER_KEY = "google"
GOOGLE_SCOPE = "openid email profile"
FLOW_TTL = timedelta(minutes=10)
DISCOVERY_TTL_SECONDS = 300.0
HTTP_TIMEOUT_SECONDS = 10.0
ID_TOKEN_LEEWAY_SECONDS = 60
ID_TOKEN_ALGORITHMS = ["RS256"]
# Google documents both spellings of its issuer.
_GOOGLE_ISSUER_ALIASES = {"https://accounts.google.com": ["accounts.google.com"]}
_MAX_NAME_LENGTH = 200

STATE_INVALID_MESSAGE = (
    "This Google sign-in link expired or was already used. Start again from the sign-in page."
)

_cache_lock = threading.Lock()
_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def oidc_cache_clear() -> None:
    """Forget cached discovery documents and key sets (tests, key rotation by hand)."""
    with _cache_lock:
        _discovery_cache.clear()
        _jwks_cache.clear()


# --- errors -------------------------------------------------------------------------------------


def _google_disabled() -> DomainError:
    return error_with_code(
        Code.google_disabled,
        "Google sign-in is not set up on this server. Sign in with your email and password.",
        http_status=404,
    )


def _google_unavailable() -> DomainError:
    return error_with_code(
        Code.google_unavailable,
        "Google could not be reached to sign you in. Try again in a minute, or sign in with "
        "your email and password.",
        http_status=502,
    )


def _google_token_failed() -> DomainError:
    return error_with_code(
        Code.google_token_failed,
        "Google did not confirm this sign-in. Start again from the sign-in page.",
        http_status=401,
    )


def _id_token_invalid() -> DomainError:
    return error_with_code(
        Code.google_id_token_invalid,
        "Google's answer could not be verified, so you were not signed in. Start again from "
        "the sign-in page.",
        http_status=401,
    )


def _state_invalid() -> DomainError:
    return error_with_code(Code.oauth_state_invalid, STATE_INVALID_MESSAGE, http_status=400)


# --- any OpenID provider ------------------------------------------------------------------------


@dataclass(frozen=True)
class OidcProvider:
    """An OpenID provider as this app is its client, and how its failures are named.

    Attributes:
        discovery_url: The provider's `.well-known/openid-configuration` URL.
        client_id: This app's client ID there (the ID token's audience).
        client_secret: This app's client secret there.
        unavailable: The error when the provider cannot be reached or answers nonsense.
        token_refused: The error when the token endpoint refuses the code (gets Authlib's error).
        id_token_invalid: The error when the ID token fails a check.
        id_token_expired: The error when the ID token is expired or issued in the future
            (claim name, its time, this server's time); `id_token_invalid` when None.
        expected_issuer: When set, discovery must name exactly this issuer.
        issuer_mismatch: The error when it does not (gets the issuer discovery named).
        issuer_aliases: Other spellings of an issuer accepted in ID tokens, by issuer.
        allowed_hosts: When set, every URL fetched for this provider (discovery, keys, token
            endpoint) passes the shared address guard (`services.net_guard`) first, these host
            names excepted: for providers a tenant names (an organization's own issuer). None
            for providers the operator configures (Google).
        address_refused: The error when the guard refuses a URL (gets the guard's reason);
            `unavailable` when None.
    """

    discovery_url: str
    client_id: str
    client_secret: str
    unavailable: Callable[[], DomainError]
    token_refused: Callable[[OAuthError], DomainError]
    id_token_invalid: Callable[[], DomainError]
    id_token_expired: Callable[[str, int, int], DomainError] | None = None
    expected_issuer: str = ""
    issuer_mismatch: Callable[[str], DomainError] | None = None
    issuer_aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    scope: str = GOOGLE_SCOPE
    allowed_hosts: frozenset[str] | None = None
    address_refused: Callable[[str], DomainError] | None = None


@dataclass(frozen=True)
class ConsumedFlow:
    """What a used flow row held: the PKCE verifier, nonce and where to go, and for whom."""

    purpose: str
    code_verifier: str
    nonce: str
    redirect_after: str
    org_id: int | None
    user_id: int | None


def _guard(provider: OidcProvider, url: str) -> net_guard.Target | None:
    """The checked target of `url` when the provider is guarded (None when it is not).

    Raises:
        DomainError: the provider's `address_refused` (or `unavailable`) naming the reason.
    """
    if provider.allowed_hosts is None:
        return None
    try:
        return net_guard.url_check(url, allowed_hosts=provider.allowed_hosts)
    except net_guard.AddressRefused as exc:
        if provider.address_refused is not None:
            raise provider.address_refused(str(exc)) from None
        raise provider.unavailable() from None


def _http_get_json(url: str, provider: OidcProvider) -> dict[str, Any]:
    target = _guard(provider, url)
    try:
        if target is None:
            response = httpx.get(url, timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False)
        else:  # connect to the address the guard checked, not to a second DNS answer
            pinned, headers, extensions = net_guard.request_parts(target)
            with httpx.Client(trust_env=False, follow_redirects=False) as client:
                response = client.get(
                    pinned, headers=headers, extensions=extensions, timeout=HTTP_TIMEOUT_SECONDS
                )
        response.raise_for_status()
        data = response.json()
    except (*HTTP_ERRORS, ValueError) as exc:
        raise provider.unavailable() from exc
    if not isinstance(data, dict):
        raise provider.unavailable()
    return data


def provider_metadata(provider: OidcProvider) -> dict[str, Any]:
    """The provider's OpenID configuration, cached per process for a few minutes.

    Raises:
        DomainError: the provider's `unavailable` (unreachable, not JSON, an endpoint missing
            or not https), or its `issuer_mismatch` when discovery names another issuer.
    """
    url = provider.discovery_url
    now = time.monotonic()
    with _cache_lock:
        cached = _discovery_cache.get(url)
    if cached and now - cached[0] < DISCOVERY_TTL_SECONDS:
        metadata = cached[1]
    else:
        metadata = _http_get_json(url, provider)
        for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = metadata.get(key)
            if not isinstance(value, str) or not is_secure_transport(value):
                raise provider.unavailable()
        with _cache_lock:
            _discovery_cache[url] = (now, metadata)
    if provider.expected_issuer and metadata["issuer"].rstrip("/") != (
        provider.expected_issuer.rstrip("/")
    ):
        if provider.issuer_mismatch is not None:
            raise provider.issuer_mismatch(metadata["issuer"])
        raise provider.unavailable()
    return metadata


def provider_keys(
    provider: OidcProvider, metadata: dict[str, Any], *, force: bool = False
) -> KeySet:
    """The provider's signing keys (JWKS), cached like discovery; `force` fetches them again."""
    jwks_uri = metadata["jwks_uri"]
    now = time.monotonic()
    with _cache_lock:
        cached = _jwks_cache.get(jwks_uri)
    if cached and not force and now - cached[0] < DISCOVERY_TTL_SECONDS:
        data = cached[1]
    else:
        data = _http_get_json(jwks_uri, provider)
        with _cache_lock:
            _jwks_cache[jwks_uri] = (now, data)
    try:
        keys = KeySet.import_key_set(data)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise provider.unavailable() from exc
    if not keys.keys:
        raise provider.unavailable()
    return keys


def _client_for(provider: OidcProvider, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        token_endpoint_auth_method="client_secret_post",
        scope=provider.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT_SECONDS,
    )


def flow_begin(
    *,
    session: Session,
    provider: OidcProvider,
    metadata: dict[str, Any],
    purpose: str,
    provider_key: str,
    redirect_uri: str,
    next_path: str,
    browser_binding: str = "",
    org_id: int | None = None,
    user_id: int | None = None,
) -> str:
    """Store a new flow (state hashed, PKCE verifier encrypted, nonce) and commit it; return
    the provider's authorization URL. Owns its unit of work: the browser leaves next."""
    state = new_token(32)
    code_verifier = new_token(48)  # 64 characters, within RFC 7636's 43..128
    nonce = new_token(24)
    session.add(
        OAuthFlowState(
            state_hash=hash_token(state),
            purpose=purpose,
            provider_key=provider_key[:64],
            code_verifier_encrypted=encrypt(code_verifier),
            nonce=nonce,
            org_id=org_id,
            user_id=user_id,
            redirect_after=next_path[:500],
            expires_at=utcnow() + FLOW_TTL,
            browser_binding_hash=(
                hash_token(browser_binding) if browser_binding_usable(browser_binding) else None
            ),
        )
    )
    session.commit()
    with _client_for(provider, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            metadata["authorization_endpoint"],
            state=state,
            code_verifier=code_verifier,
            nonce=nonce,
        )
    return url


def flow_consume(
    *,
    session: Session,
    state: str,
    purposes: Collection[str],
    browser_binding: str | None,
    state_invalid: Callable[[], DomainError],
) -> ConsumedFlow:
    """Mark the flow used (committed at once, so a replay fails) and return what it held.

    A callback from another browser than the one that started the flow is refused and leaves
    the flow as it was. Owns its step of the caller's unit of work: it commits, or rolls back
    a refusal.
    """
    row = None
    if state:
        row = session.exec(
            select(OAuthFlowState)
            .where(
                OAuthFlowState.state_hash.in_(token_hash_candidates(state)),
                OAuthFlowState.purpose.in_(list(purposes)),
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
    if row is None or row.used_at is not None or as_utc(row.expires_at) <= utcnow():
        session.rollback()
        raise state_invalid()
    if browser_binding is not None and not browser_binding_matches(
        row.browser_binding_hash, browser_binding
    ):
        session.rollback()
        raise sign_in_other_browser_error()
    row.used_at = utcnow()
    session.add(row)
    session.commit()
    try:
        code_verifier = decrypt(row.code_verifier_encrypted)
    except ValueError as exc:  # SECRET_KEY changed mid-flow
        raise state_invalid() from exc
    return ConsumedFlow(
        purpose=row.purpose,
        code_verifier=code_verifier,
        nonce=row.nonce,
        redirect_after=row.redirect_after,
        org_id=row.org_id,
        user_id=row.user_id,
    )


def code_exchange(
    *,
    provider: OidcProvider,
    metadata: dict[str, Any],
    redirect_uri: str,
    code: str,
    code_verifier: str,
) -> dict[str, Any]:
    """Swap the authorization code (with the PKCE verifier) for tokens at the token endpoint.

    A guarded provider's token endpoint is checked by the address guard first (the request
    itself goes through Authlib by name, so the check is as of just before it).
    """
    _guard(provider, metadata["token_endpoint"])
    try:
        with _client_for(provider, redirect_uri) as client:
            token = client.fetch_token(
                metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            )
    except OAuthError as exc:  # the provider refused the code, the verifier or this client
        raise provider.token_refused(exc) from exc
    except (*HTTP_ERRORS, ValueError) as exc:
        raise provider.unavailable() from exc
    return dict(token)


def id_token_claims(
    *, provider: OidcProvider, metadata: dict[str, Any], token: dict[str, Any], nonce: str
) -> CodeIDToken:
    """Verify the ID token's signature (the provider's keys), issuer, audience, expiry, nonce."""
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise provider.id_token_invalid()
    client_id = provider.client_id
    issuer = metadata["issuer"]
    registry = JWSRegistry(algorithms=ID_TOKEN_ALGORITHMS)
    try:
        try:
            decoded = jwt.decode(id_token, provider_keys(provider, metadata), registry=registry)
        except InvalidKeyIdError:  # the provider rotated its keys since we cached them
            decoded = jwt.decode(
                id_token, provider_keys(provider, metadata, force=True), registry=registry
            )
        _token_times_check(provider, decoded.claims)
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                "iss": {
                    "essential": True,
                    "values": [issuer, *provider.issuer_aliases.get(issuer, ())],
                },
                "aud": {"essential": True, "value": client_id},
                "sub": {"essential": True},
            },
            {"nonce": nonce, "client_id": client_id, "access_token": token.get("access_token")},
        )
        claims.validate(leeway=ID_TOKEN_LEEWAY_SECONDS)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise provider.id_token_invalid() from exc
    # CodeIDToken only checks the nonce when one was sent; ours always is, so require it.
    if not nonce or claims.get("nonce") != nonce:
        raise provider.id_token_invalid()
    return claims


def _token_times_check(provider: OidcProvider, claims: dict[str, Any]) -> None:
    """Name an expired token, or one issued in the future (clock skew), when the provider can."""
    if provider.id_token_expired is None:
        return
    now = int(time.time())
    expires, issued = claims.get("exp"), claims.get("iat")
    if isinstance(expires, int | float) and expires < now - ID_TOKEN_LEEWAY_SECONDS:
        raise provider.id_token_expired("exp", int(expires), now)
    if isinstance(issued, int | float) and issued > now + ID_TOKEN_LEEWAY_SECONDS:
        raise provider.id_token_expired("iat", int(issued), now)


# --- Google as a provider -----------------------------------------------------------------------


def _google_provider() -> OidcProvider:
    settings = get_settings()
    return OidcProvider(
        discovery_url=settings.google_discovery_url,
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret,
        unavailable=_google_unavailable,
        token_refused=lambda _error: _google_token_failed(),
        id_token_invalid=_id_token_invalid,
        issuer_aliases=_GOOGLE_ISSUER_ALIASES,
    )


def _require_enabled() -> None:
    if not get_settings().google_enabled:
        raise _google_disabled()


# --- begin --------------------------------------------------------------------------------------


def google_sign_in_begin(
    *, session: Session, redirect_uri: str, next_path: str, browser_binding: str = ""
) -> str:
    """Start a Google sign-in and return the URL to send the browser to.

    Args:
        session: Database session; this service owns the unit of work and commits the new
            flow row before the browser leaves for Google.
        redirect_uri: The callback URL registered at Google, exactly.
        next_path: Safe relative path to open after sign-in (already validated by the caller).
        browser_binding: The pre-auth cookie of the browser starting the flow; only that
            browser may complete it through the callback route.

    Returns:
        Google's authorization URL (state, PKCE S256 challenge, nonce, scope openid email profile).

    Raises:
        DomainError: `google_disabled` (no client ID), `google_unavailable` (discovery failed).
    """
    _require_enabled()
    provider = _google_provider()
    return flow_begin(
        session=session,
        provider=provider,
        metadata=provider_metadata(provider),
        purpose=GOOGLE_SIGN_IN_PURPOSE,
        provider_key=GOOGLE_PROVIDER_KEY,
        redirect_uri=redirect_uri,
        next_path=next_path,
        browser_binding=browser_binding,
    )


# --- complete -----------------------------------------------------------------------------------


def _email_verified(claims: CodeIDToken) -> bool:
    value = claims.get("email_verified")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _user_for_google(session: Session, claims: CodeIDToken) -> User:
    """The user for these verified claims: by Google subject, else linked by email, else new."""
    subject = str(claims["sub"])
    email = str(claims.get("email") or "").strip().lower()
    verified = _email_verified(claims)
    now = utcnow()
    user = session.exec(
        select(User)
        .where(User.google_subject == subject)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if user is not None:
        if verified and user.email_verified_at is None and user.email == email:
            user.email_verified_at = now
            session.add(user)
        return user
    if not email:
        raise error_with_code(
            Code.google_email_missing,
            "Google did not share an email address for this account, so we cannot sign you in. "
            "Allow email access when Google asks, or sign in with your email and password.",
            base=PermissionDenied,
        )
    user = session.exec(
        select(User)
        .where(User.email == email)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if user is not None:
        if user.google_subject is not None:
            raise error_with_code(
                Code.google_account_mismatch,
                f"The account for {email} is already linked to a different Google account. "
                "Sign in with that Google account, or with your email and password.",
                base=Conflict,
            )
        if not verified:
            raise error_with_code(
                Code.google_email_unverified,
                f"Google has not verified {email} for this Google account, so it cannot be "
                "linked to your existing account. Sign in with your email and password instead.",
                base=PermissionDenied,
            )
        _link(session, user=user, subject=subject, now=now)
        return user
    user = User(
        email=email,
        name=str(claims.get("name") or "").strip()[:_MAX_NAME_LENGTH],
        password_hash=None,
        google_subject=subject,
        email_verified_at=now if verified else None,
    )
    session.add(user)
    session.flush()
    audit_record(
        session=session,
        action="auth.google_registered",
        actor_user_id=user.id,
        target_type="user",
        target_id=user.id,
        details={"email_verified": verified},
    )
    return user


def claim_unproven_account(session: Session, *, user: User, now) -> int:
    """An identity provider just proved the address of an account nobody had proven.

    Whoever registered it may not own it (account pre-hijacking): drop the unproven password
    and end every session started with it. Returns how many sessions were ended.
    """
    user.password_hash = None
    user.email_verified_at = now
    revoked = 0
    for user_session in session.exec(
        select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))  # type: ignore[union-attr]
        .with_for_update()
    ).all():
        user_session.revoked_at = now
        session.add(user_session)
        revoked += 1
    session.add(user)
    return revoked


def _link(session: Session, *, user: User, subject: str, now) -> None:
    """Attach a Google identity to an existing account whose email Google has verified."""
    was_unverified = user.email_verified_at is None
    user.google_subject = subject
    revoked = 0
    if was_unverified:
        # Google just proved ownership of an address nobody had proven before.
        revoked = claim_unproven_account(session, user=user, now=now)
    session.add(user)
    session.flush()
    audit_record(
        session=session,
        action="auth.google_linked",
        actor_user_id=user.id,
        target_type="user",
        target_id=user.id,
        details={"previously_unverified": was_unverified, "sessions_revoked": revoked},
    )


def google_sign_in_complete(
    *,
    session: Session,
    state: str,
    code: str,
    redirect_uri: str,
    ip_address: str = "",
    user_agent: str = "",
    browser_binding: str | None = None,
) -> tuple[SignInChallenge, str]:
    """Finish a Google sign-in: consume the state, exchange the code, verify the ID token.

    The user is found by Google subject; otherwise an account with the same email is linked,
    only when Google says the email is verified; otherwise a new account is created. The
    result is the same pending session as a password sign-in (2FA still required when on).

    Args:
        session: Database session; this service owns the unit of work: it commits the state's
            use before calling Google's token endpoint (a replay fails, no transaction is held
            during the call), then the pending session; it rolls back a refusal.
        state: The `state` query parameter Google sent back.
        code: The authorization code Google sent back.
        redirect_uri: The same callback URL used to begin.
        ip_address: Client address, recorded on the session.
        user_agent: Client user agent, recorded on the session.
        browser_binding: The pre-auth cookie of the callback request. The callback route
            always passes it ("" when absent): the flow then completes only in the browser
            that started it. None is for server code that checks the browser itself.

    Returns:
        The sign-in challenge (handoff code, whether a TOTP code must follow) and the
        path to open afterwards.

    Raises:
        DomainError: `google_disabled`, `oauth_state_invalid` (unknown, used or expired state),
            `sign_in_other_browser` (another browser started this flow), `google_unavailable`,
            `google_token_failed`, `google_id_token_invalid`, `google_email_missing`,
            `google_email_unverified`, `google_account_mismatch`, `account_locked`.
    """
    _require_enabled()
    flow = flow_consume(
        session=session,
        state=state,
        purposes=[GOOGLE_SIGN_IN_PURPOSE],
        browser_binding=browser_binding,
        state_invalid=_state_invalid,
    )
    if not code:
        raise _google_token_failed()
    provider = _google_provider()
    metadata = provider_metadata(provider)
    token = code_exchange(
        provider=provider,
        metadata=metadata,
        redirect_uri=redirect_uri,
        code=code,
        code_verifier=flow.code_verifier,
    )
    claims = id_token_claims(provider=provider, metadata=metadata, token=token, nonce=flow.nonce)
    next_path = flow.redirect_after
    try:
        user = _user_for_google(session, claims)
        # "Require SSO" of the organization that verified this address's domain.
        from services.sso import password_sign_in_check  # services.sso imports this module

        password_sign_in_check(session=session, user=user, method="Google")
        challenge = sign_in_handoff_create(
            session=session,
            user=user,
            ip_address=ip_address,
            user_agent=user_agent,
            browser_binding=browser_binding or "",
        )
        session.commit()
    except IntegrityError as exc:  # the same account was created concurrently
        session.rollback()
        raise error_with_code(
            Code.google_sign_in_conflict,
            "This Google account was being signed in twice at the same time. Start again from "
            "the sign-in page.",
            base=Conflict,
        ) from exc
    except DomainError:
        session.rollback()
        raise
    return challenge, next_path
