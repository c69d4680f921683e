"""Google sign-in (OIDC code flow + state + PKCE + nonce) against a real provider on loopback.

The provider below is a small Starlette app served by uvicorn in a thread: discovery,
/authorize (records the request, redirects back with a code), /token (checks the client
secret, redirect URI and the PKCE verifier against the S256 challenge it saw, returns an
RS256-signed ID token) and /jwks. The app's routes are driven with Starlette's TestClient,
following each redirect by hand.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from core import routes
from core.clock import utcnow
from core.crypto import encrypt, hash_password
from core.settings import get_settings, reset_settings_cache
from creative_studio.api import build_api
from creative_studio.api.auth_routes import frontend_url
from models import AuditLogEntry, OAuthFlowState, User, UserSession
from services import auth as auth_service
from services import oidc
from services.errors import DomainError

CLIENT_ID = "creative-studio-test.apps.googleusercontent.com"
CLIENT_SECRET = "test-client-secret"
BACKEND = "http://testserver"  # TestClient's host, so /auth/session can be followed in-process
CALLBACK = BACKEND + "/auth/google/callback"


# --- the provider -------------------------------------------------------------------------------


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class FakeGoogle:
    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    # Same kid, different key: a forged token that names a trusted key.
    forger_key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"})
    )
    identity: dict[str, Any] = field(default_factory=dict)
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    sign_with_forger_key: bool = False
    tamper_payload: bool = False
    authorize_error: str = ""
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_refusals: list[str] = field(default_factory=list)
    discovery_hits: int = 0
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reset(self) -> None:
        self.identity = {
            "sub": "google-sub-ada",
            "email": "ada@example.com",
            "email_verified": True,
            "name": "Ada Lovelace",
        }
        self.id_token_overrides = {}
        self.sign_with_forger_key = False
        self.tamper_payload = False
        self.authorize_error = ""
        self.authorize_requests.clear()
        self.token_requests.clear()
        self.token_refusals.clear()
        self.discovery_hits = 0
        self.codes.clear()

    # endpoints

    async def discovery(self, _request: Request) -> JSONResponse:
        self.discovery_hits += 1
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def authorize(self, request: Request) -> RedirectResponse | JSONResponse:
        params = dict(request.query_params)
        self.authorize_requests.append(params)
        if params.get("client_id") != CLIENT_ID or params.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        back: dict[str, str] = {"state": params.get("state", "")}
        if self.authorize_error:
            back["error"] = self.authorize_error
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "challenge": params.get("code_challenge", ""),
                "method": params.get("code_challenge_method", ""),
                "nonce": params.get("nonce", ""),
                "redirect_uri": params.get("redirect_uri", ""),
                "identity": dict(self.identity),
            }
            back["code"] = code
        return RedirectResponse(params["redirect_uri"] + "?" + urlencode(back), status_code=302)

    def _refuse(self, reason: str) -> JSONResponse:
        self.token_refusals.append(reason)
        return JSONResponse(
            {"error": "invalid_grant", "error_description": reason}, status_code=400
        )

    async def token(self, request: Request) -> JSONResponse:
        form = dict(await request.form())
        self.token_requests.append(form)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "authorization_code":
            return self._refuse("grant_type")
        grant = self.codes.pop(form.get("code", ""), None)  # codes work once
        if grant is None:
            return self._refuse("unknown code")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return self._refuse("redirect_uri mismatch")
        verifier = form.get("code_verifier", "")
        if grant["method"] != "S256" or not verifier or _s256(verifier) != grant["challenge"]:
            return self._refuse("code_verifier does not match the code_challenge")
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            **grant["identity"],
            **self.id_token_overrides,
        }
        claims = {name: value for name, value in claims.items() if value is not None}
        key = self.forger_key if self.sign_with_forger_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "k1", "typ": "JWT"}, claims, key)
        if self.tamper_payload:  # keep Google's signature, change what it signed
            header, _payload, signature = id_token.split(".")
            forged = json.dumps({**claims, "email": "mallory@example.com"}).encode()
            payload = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
            id_token = ".".join([header, payload, signature])
        return JSONResponse(
            {
                "access_token": "ya29." + secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 3599,
                "scope": "openid email profile",
                "id_token": id_token,
            }
        )

    async def jwks(self, _request: Request) -> JSONResponse:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
            ]
        )


@pytest.fixture(scope="module")
def fake_google() -> Iterator[FakeGoogle]:
    provider = FakeGoogle()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    provider.issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(provider.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the test OIDC provider did not start"
        time.sleep(0.02)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


_ENV = {
    "GOOGLE_CLIENT_ID": CLIENT_ID,
    "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
    "API_BASE_URL": BACKEND,
}


@pytest.fixture
def google(engine, fake_google) -> Iterator[FakeGoogle]:
    """Settings pointed at the loopback provider; a clean provider and discovery cache."""
    saved = {name: os.environ.get(name) for name in [*_ENV, "GOOGLE_DISCOVERY_URL"]}
    os.environ.update(_ENV)
    os.environ["GOOGLE_DISCOVERY_URL"] = fake_google.issuer + "/.well-known/openid-configuration"
    reset_settings_cache()
    oidc.oidc_cache_clear()
    fake_google.reset()
    try:
        yield fake_google
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings_cache()
        oidc.oidc_cache_clear()


@pytest.fixture
def client(google) -> Iterator[TestClient]:
    with TestClient(build_api(), base_url=BACKEND, follow_redirects=False) as test_client:
        yield test_client


# --- helpers ------------------------------------------------------------------------------------


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def _local(url: str) -> str:
    """The path and query of a URL on the backend (TestClient's host)."""
    assert url.startswith(BACKEND + "/"), url
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _to_google(client: TestClient, next_path: str = "/org/acme/studio") -> str:
    """GET /auth/google/start, then Google's /authorize; returns the callback URL Google sends."""
    start = client.get("/auth/google/start", params={"next": next_path})
    assert start.status_code == 303, start.text
    authorize = httpx.get(start.headers["location"], follow_redirects=False)
    assert authorize.status_code == 302, authorize.text
    return authorize.headers["location"]


def _sign_in_error(response: httpx.Response) -> str:
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(frontend_url(routes.SIGN_IN) + "?"), location
    return _query(location)["error"]


def _user(engine, email: str) -> User | None:
    with Session(engine) as session:
        return session.exec(select(User).where(User.email == email)).first()


def _add_user(engine, **fields) -> User:
    with Session(engine, expire_on_commit=False) as session:
        user = User(**fields)
        session.add(user)
        session.commit()
        return user


def _session_count(engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(UserSession)).all())


# --- happy paths ------------------------------------------------------------------------------


def test_new_user_is_created_verified_and_signed_in(client, google, engine):
    callback = _to_google(client, next_path="/org/acme/studio")
    assert callback.startswith(CALLBACK + "?")

    sent = google.authorize_requests[-1]
    assert sent["redirect_uri"] == get_settings().backend_base_url + "/auth/google/callback"
    assert sent["scope"] == "openid email profile"
    assert sent["response_type"] == "code"
    assert sent["code_challenge_method"] == "S256"
    assert sent["state"] and sent["nonce"] and sent["code_challenge"]
    with Session(engine) as session:
        flow = session.exec(select(OAuthFlowState)).one()
        assert (
            flow.state_hash != sent["state"] and sent["state"] not in flow.code_verifier_encrypted
        )
        assert flow.purpose == "google_sign_in" and flow.redirect_after == "/org/acme/studio"

    response = client.get(_local(callback))
    assert response.status_code == 303
    handoff = response.headers["location"]
    assert handoff.startswith(BACKEND + routes.API_AUTH_SESSION + "?")
    assert _query(handoff)["next"] == "/org/acme/studio"

    activated = client.get(_local(handoff))
    assert activated.status_code == 303
    assert activated.headers["location"] == frontend_url("/org/acme/studio")
    token = activated.cookies.get(routes.SESSION_COOKIE)
    assert token

    with Session(engine) as session:
        resolved = auth_service.session_resolve(session=session, token=token)
        assert resolved is not None
        user, _ = resolved
        assert user.email == "ada@example.com"
        assert user.name == "Ada Lovelace"
        assert user.google_subject == "google-sub-ada"
        assert user.email_verified_at is not None
        assert user.password_hash is None


def test_returning_user_is_found_by_google_subject(client, google, engine):
    _add_user(engine, email="old@example.com", google_subject="google-sub-ada")
    response = client.get(_local(_to_google(client)))
    assert response.headers["location"].startswith(BACKEND + routes.API_AUTH_SESSION)
    with Session(engine) as session:
        assert len(session.exec(select(User)).all()) == 1  # matched by subject, not email


def test_new_user_with_unverified_google_email_is_created_unverified(client, google, engine):
    google.identity["email_verified"] = False
    response = client.get(_local(_to_google(client)))
    assert response.headers["location"].startswith(BACKEND + routes.API_AUTH_SESSION)
    user = _user(engine, "ada@example.com")
    assert user is not None and user.email_verified_at is None


def test_pkce_verifier_is_sent_and_checked_by_the_provider(client, google, engine):
    client.get(_local(_to_google(client)))
    challenge = google.authorize_requests[-1]["code_challenge"]
    form = google.token_requests[-1]
    assert _s256(form["code_verifier"]) == challenge
    assert form["redirect_uri"] == CALLBACK
    assert not google.token_refusals

    # A flow whose stored verifier does not match what Google saw is refused by Google.
    google.reset()
    callback = _to_google(client, next_path="/")
    with Session(engine) as session:
        flow = session.exec(select(OAuthFlowState).where(OAuthFlowState.used_at.is_(None))).one()
        flow.code_verifier_encrypted = encrypt("x" * 64)
        session.add(flow)
        session.commit()
    assert _sign_in_error(client.get(_local(callback))) == "google_token_failed"
    assert google.token_refusals == ["code_verifier does not match the code_challenge"]


# --- linking ---------------------------------------------------------------------------------


def test_existing_verified_user_is_linked_when_google_verified_the_email(client, google, engine):
    existing = _add_user(
        engine,
        email="ada@example.com",
        password_hash=hash_password("correct horse battery staple"),
        email_verified_at=utcnow(),
    )
    response = client.get(_local(_to_google(client)))
    assert response.headers["location"].startswith(BACKEND + routes.API_AUTH_SESSION)
    with Session(engine) as session:
        user = session.get(User, existing.id)
        assert user.google_subject == "google-sub-ada"
        assert user.password_hash == existing.password_hash  # the password still works
        audit = session.exec(
            select(AuditLogEntry).where(AuditLogEntry.action == "auth.google_linked")
        ).one()
        assert audit.target_id == str(existing.id)


def test_linking_an_unproven_account_drops_its_password_and_sessions(client, google, engine):
    """Someone may have registered the address without owning it (account pre-hijacking)."""
    squatter = _add_user(engine, email="ada@example.com", password_hash="argon2-of-someone-else")
    with Session(engine) as session:
        session.add(
            UserSession(
                user_id=squatter.id,
                token_hash="squatter-session",
                activated_at=utcnow(),
                expires_at=utcnow() + timedelta(days=1),
            )
        )
        session.commit()
    client.get(_local(_to_google(client)))
    with Session(engine) as session:
        user = session.get(User, squatter.id)
        assert user.google_subject == "google-sub-ada"
        assert user.password_hash is None
        assert user.email_verified_at is not None
        old = session.exec(
            select(UserSession).where(UserSession.token_hash == "squatter-session")
        ).one()
        assert old.revoked_at is not None


def test_existing_user_is_not_linked_when_google_email_is_unverified(client, google, engine):
    existing = _add_user(
        engine, email="ada@example.com", password_hash="x", email_verified_at=utcnow()
    )
    google.identity["email_verified"] = False
    assert _sign_in_error(client.get(_local(_to_google(client)))) == "google_email_unverified"
    with Session(engine) as session:
        assert session.get(User, existing.id).google_subject is None
    assert _session_count(engine) == 0


def test_unverified_email_message_tells_them_to_use_their_password(google, engine):
    _add_user(engine, email="ada@example.com", password_hash="x", email_verified_at=utcnow())
    google.identity["email_verified"] = False
    with Session(engine, expire_on_commit=False) as session:
        url = oidc.google_sign_in_begin(session=session, redirect_uri=CALLBACK, next_path="/")
    back = _query(httpx.get(url, follow_redirects=False).headers["location"])
    with Session(engine, expire_on_commit=False) as session, pytest.raises(DomainError) as caught:
        oidc.google_sign_in_complete(
            session=session, state=back["state"], code=back["code"], redirect_uri=CALLBACK
        )
    assert caught.value.code == "google_email_unverified"
    assert "ada@example.com" in caught.value.message
    assert "sign in with your email and password" in caught.value.message.lower()


def test_account_linked_to_another_google_identity_is_refused(client, google, engine):
    _add_user(engine, email="ada@example.com", google_subject="another-google-sub")
    assert _sign_in_error(client.get(_local(_to_google(client)))) == "google_account_mismatch"


# --- ID token validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        "wrong_nonce",
        "tampered_payload",
        "forged_signature",
        "wrong_audience",
        "wrong_issuer",
        "expired",
    ],
)
def test_invalid_id_token_is_refused(client, google, engine, tamper):
    now = int(time.time())
    if tamper == "wrong_nonce":
        google.id_token_overrides["nonce"] = "nonce-from-another-flow"
    elif tamper == "tampered_payload":
        google.tamper_payload = True
    elif tamper == "forged_signature":
        google.sign_with_forger_key = True
    elif tamper == "wrong_audience":
        google.id_token_overrides["aud"] = "someone-else.apps.googleusercontent.com"
    elif tamper == "wrong_issuer":
        google.id_token_overrides["iss"] = "https://evil.example"
    elif tamper == "expired":
        google.id_token_overrides.update(iat=now - 3600, exp=now - 600)
    assert _sign_in_error(client.get(_local(_to_google(client)))) == "google_id_token_invalid"
    assert _user(engine, "ada@example.com") is None
    assert _user(engine, "mallory@example.com") is None
    assert _session_count(engine) == 0


def test_missing_nonce_in_id_token_is_refused(client, google, engine):
    google.id_token_overrides["nonce"] = None
    assert _sign_in_error(client.get(_local(_to_google(client)))) == "google_id_token_invalid"


# --- state -----------------------------------------------------------------------------------


def test_state_cannot_be_reused(client, google, engine):
    callback = _to_google(client)
    first = client.get(_local(callback))
    assert first.headers["location"].startswith(BACKEND + routes.API_AUTH_SESSION)
    assert _sign_in_error(client.get(_local(callback))) == "oauth_state_invalid"
    assert len(google.token_requests) == 1  # the replay never reached Google


def test_unknown_or_expired_state_is_refused(client, google, engine):
    callback = _to_google(client)
    params = _query(callback)
    bogus = "/auth/google/callback?" + urlencode({"state": "made-up", "code": params["code"]})
    assert _sign_in_error(client.get(bogus)) == "oauth_state_invalid"

    with Session(engine) as session:
        flow = session.exec(select(OAuthFlowState)).one()
        flow.expires_at = utcnow() - timedelta(seconds=1)
        session.add(flow)
        session.commit()
    assert _sign_in_error(client.get(_local(callback))) == "oauth_state_invalid"
    assert google.token_requests == []


def test_state_invalid_message(google, engine):
    with Session(engine) as session, pytest.raises(DomainError) as caught:
        oidc.google_sign_in_complete(session=session, state="nope", code="c", redirect_uri=CALLBACK)
    assert caught.value.code == "oauth_state_invalid"
    assert caught.value.message == (
        "This Google sign-in link expired or was already used. Start again from the sign-in page."
    )


# --- provider errors, 2FA, lockout, configuration ----------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"), [("access_denied", "google_denied"), ("server_error", "google_failed")]
)
def test_provider_error_parameter_is_shown_on_the_sign_in_page(client, google, engine, error, code):
    google.authorize_error = error
    callback = _to_google(client)
    assert _query(callback)["error"] == error
    assert _sign_in_error(client.get(_local(callback))) == code
    assert google.token_requests == []


def test_totp_user_is_sent_to_enter_the_code(client, google, engine):
    user = _add_user(
        engine,
        email="ada@example.com",
        google_subject="google-sub-ada",
        email_verified_at=utcnow(),
        totp_secret_encrypted=encrypt("JBSWY3DPEHPK3PXP"),
        totp_enabled_at=utcnow(),
    )
    response = client.get(_local(_to_google(client, next_path="/org/acme/billing")))
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(frontend_url(routes.SIGN_IN) + "?")
    params = _query(location)
    assert params["next"] == "/org/acme/billing"
    with Session(engine, expire_on_commit=False) as session:
        pending = session.exec(select(UserSession).where(UserSession.user_id == user.id)).one()
        assert pending.mfa_pending is True
        with pytest.raises(DomainError) as caught:
            auth_service.session_activate(session=session, handoff_code=params["google_mfa"])
        assert caught.value.code == "totp_required"
    # The handoff route refuses it too, until the code is entered.
    refused = client.get(routes.API_AUTH_SESSION, params={"code": params["google_mfa"]})
    assert routes.SESSION_COOKIE not in refused.cookies


def test_locked_account_is_refused(client, google, engine):
    _add_user(
        engine,
        email="ada@example.com",
        google_subject="google-sub-ada",
        locked_until=utcnow() + timedelta(minutes=10),
        failed_sign_in_count=5,
    )
    assert _sign_in_error(client.get(_local(_to_google(client)))) == "account_locked"
    assert _session_count(engine) == 0


def test_unsafe_next_is_replaced_by_home(client, google, engine):
    response = client.get(_local(_to_google(client, next_path="//evil.example/phish")))
    assert _query(response.headers["location"])["next"] == "/"


def test_discovery_is_cached(client, google, engine):
    client.get(_local(_to_google(client)))
    _to_google(client)
    assert google.discovery_hits == 1


def test_google_disabled_without_client_id(client, google, engine):
    os.environ.pop("GOOGLE_CLIENT_ID")
    reset_settings_cache()
    assert _sign_in_error(client.get("/auth/google/start")) == "google_disabled"
    assert _sign_in_error(client.get("/auth/google/callback?state=s&code=c")) == "google_disabled"
    assert google.authorize_requests == [] and google.discovery_hits == 0
