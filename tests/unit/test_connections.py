"""Connections: provider catalog, connect flow (state + PKCE S256), tokens encrypted, refresh.

The OAuth provider is a real HTTP server on loopback (Starlette + uvicorn in a thread): its
/authorize endpoint records the PKCE challenge, /token checks the verifier and issues
rotating refresh tokens, /userinfo names the account.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from core import clock
from core.crypto import decrypt, encrypt, hash_token
from models import AuditLogEntry, OAuthConnection, OAuthFlowState, User
from services import connections as svc
from services.errors import DomainError, PermissionDenied
from tests.factories import add_member, free_port, make_org

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


# --- a real OAuth 2.0 provider on loopback ------------------------------------------------------


@dataclass
class LoopbackOAuth:
    """State of the fake provider; tests read and tweak it."""

    base_url: str = ""
    token_calls: Counter = field(default_factory=Counter)
    challenges: dict[str, str] = field(default_factory=dict)  # code -> S256 challenge
    valid_refresh: set[str] = field(default_factory=set)
    refresh_delay: float = 0.0
    expires_in: int = 3600
    rotate: bool = True
    issued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_tokens(self, *, with_refresh: bool = True) -> dict:
        with self.lock:
            self.issued += 1
            number = self.issued
        body = {
            "access_token": f"access-{number}",
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": "r_posts w_posts",
        }
        if with_refresh:
            body["refresh_token"] = f"refresh-{number}"
            self.valid_refresh.add(body["refresh_token"])
        return body

    def app(self) -> Starlette:
        async def authorize(request: Request):
            params = request.query_params
            assert params["code_challenge_method"] == "S256"
            code = f"code-{len(self.challenges) + 1}"
            self.challenges[code] = params["code_challenge"]
            target = f"{params['redirect_uri']}?code={code}&state={params['state']}"
            return RedirectResponse(target, status_code=302)

        async def token(request: Request):
            form = await request.form()
            grant = form.get("grant_type", "")
            self.token_calls[grant] += 1
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            if grant == "authorization_code":
                challenge = self.challenges.pop(str(form.get("code", "")), None)
                verifier = str(form.get("code_verifier", ""))
                computed = (
                    base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                    .rstrip(b"=")
                    .decode()
                )
                if challenge is None or computed != challenge:
                    return JSONResponse({"error": "invalid_grant"}, status_code=400)
                return JSONResponse(self.new_tokens())
            if grant == "refresh_token":
                if self.refresh_delay:
                    time.sleep(
                        self.refresh_delay
                    )  # a slow provider: the row stays locked meanwhile
                presented = str(form.get("refresh_token", ""))
                if presented not in self.valid_refresh:
                    return JSONResponse(
                        {"error": "invalid_grant", "error_description": "revoked"}, status_code=400
                    )
                if self.rotate:
                    self.valid_refresh.discard(presented)  # rotating: a refresh token works once
                return JSONResponse(self.new_tokens(with_refresh=self.rotate))
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

        async def userinfo(request: Request):
            if not request.headers.get("authorization", "").startswith("Bearer access-"):
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            return JSONResponse({"data": {"id": "acct-42", "username": "acme_marketing"}})

        return Starlette(
            routes=[
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
                Route("/userinfo", userinfo),
            ]
        )


@pytest.fixture(scope="session")
def oauth_server() -> Iterator[LoopbackOAuth]:
    state = LoopbackOAuth()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            state.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("loopback OAuth server did not start")
        time.sleep(0.02)
    state.base_url = f"http://127.0.0.1:{port}"
    yield state
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def provider_catalog(oauth_server, tmp_path, monkeypatch) -> LoopbackOAuth:
    """A catalog whose `testprov` lives on the loopback server (plus one unconfigured provider)."""
    oauth_server.token_calls.clear()
    oauth_server.refresh_delay = 0.0
    oauth_server.rotate = True
    path = tmp_path / "connections.toml"
    path.write_text(
        f"""
[[provider]]
key = "testprov"
name = "TestProv"
authorize_url = "{oauth_server.base_url}/authorize"
token_url = "{oauth_server.base_url}/token"
scopes = ["r_posts", "w_posts"]
client_id_env = "TESTPROV_CLIENT_ID"
client_secret_env = "TESTPROV_CLIENT_SECRET"
userinfo_url = "{oauth_server.base_url}/userinfo"
account_id_field = "data.id"
account_label_field = "data.username"

[[provider]]
key = "unset"
name = "Unset Platform"
authorize_url = "https://unset.example/authorize"
token_url = "https://unset.example/token"
scopes = ["a"]
client_id_env = "UNSET_PLATFORM_CLIENT_ID"
client_secret_env = "UNSET_PLATFORM_CLIENT_SECRET"
"""
    )
    monkeypatch.setenv(svc.CATALOG_ENV, str(path))
    monkeypatch.setenv("TESTPROV_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TESTPROV_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.delenv("UNSET_PLATFORM_CLIENT_ID", raising=False)
    return oauth_server


def add_connection(
    engine,
    org_id: int,
    *,
    refresh_token: str | None,
    expires_in: timedelta,
    provider_key: str = "testprov",
    account_id: str = "acct",
    now: datetime | None = None,
) -> int:
    now = now or clock.utcnow()
    with Session(engine) as session:
        row = OAuthConnection(
            org_id=org_id,
            provider_key=provider_key,
            account_id=account_id,
            account_label="Acme page",
            scopes=["r_posts"],
            access_token_encrypted=encrypt("old-access"),
            refresh_token_encrypted=encrypt(refresh_token) if refresh_token else None,
            expires_at=now + expires_in,
            last_refreshed_at=now - timedelta(hours=1),
        )
        session.add(row)
        session.commit()
        return row.id


def connection(engine, connection_id: int) -> OAuthConnection:
    with Session(engine) as session:
        return session.get(OAuthConnection, connection_id)


# --- org fixtures (SQLite) ------------------------------------------------------------------------


@pytest.fixture
def org_setup(session):
    org = make_org(session, slug="acme", plan_key="growth")
    owner = add_member(session, org, "owner@acme.test", "owner")
    editor = add_member(session, org, "editor@acme.test", "editor")
    session.commit()
    return org, owner, editor


REDIRECT_URI = "http://localhost:8000/connections/testprov/callback"


def consent(url: str) -> tuple[str, str]:
    """Follow the provider's consent screen like a browser: returns (code, state)."""
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return query["code"][0], query["state"][0]


# --- catalog --------------------------------------------------------------------------------------


def test_shipped_catalog_lists_the_four_platforms_with_their_env_vars(monkeypatch):
    monkeypatch.delenv(svc.CATALOG_ENV, raising=False)
    for name in ("LINKEDIN_CLIENT_ID", "LINKEDIN_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    providers = {p.key: p for p in svc.connection_providers()}
    assert set(providers) == {"linkedin", "meta", "google_ads", "x"}
    linkedin = providers["linkedin"]
    assert linkedin.client_id_env == "LINKEDIN_CLIENT_ID"
    assert linkedin.missing_env == ["LINKEDIN_CLIENT_ID", "LINKEDIN_CLIENT_SECRET"]
    assert not linkedin.configured
    assert all(
        p.authorize_url.startswith("https://") and p.token_url.startswith("https://")
        for p in providers.values()
    )
    assert providers["x"].token_endpoint_auth_method == "client_secret_basic"
    assert dict(providers["google_ads"].authorize_params)["access_type"] == "offline"
    assert providers["meta"].refreshable is False


# --- connect flow ---------------------------------------------------------------------------------


def test_connect_flow_stores_tokens_encrypted_and_shows_scopes(
    engine, session, org_setup, provider_catalog
):
    org, owner, _ = org_setup
    url = svc.connection_connect_begin(
        session=session,
        user=owner,
        org_id=org.id,
        provider_key="testprov",
        redirect_uri=REDIRECT_URI,
    )
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["r_posts w_posts"]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert "code_verifier" not in query
    flow = session.exec(select(OAuthFlowState)).one()
    assert flow.state_hash == hash_token(query["state"][0])  # only the hash is stored
    assert flow.purpose == "connection" and flow.org_id == org.id and flow.user_id == owner.id
    assert len(decrypt(flow.code_verifier_encrypted)) >= 43

    code, state = consent(url)
    view, slug = svc.connection_connect_complete(
        session=session,
        user=owner,
        provider_key="testprov",
        state=state,
        code=code,
        redirect_uri=REDIRECT_URI,
    )

    assert slug == "acme"
    assert view.provider_name == "TestProv" and view.account_label == "acme_marketing"
    assert view.scopes == ("r_posts", "w_posts") and view.status == "active"
    row = session.exec(select(OAuthConnection)).one()
    assert row.account_id == "acct-42"
    assert row.access_token_encrypted and "access-" not in row.access_token_encrypted
    assert decrypt(row.access_token_encrypted).startswith("access-")
    assert decrypt(row.refresh_token_encrypted).startswith("refresh-")
    assert provider_catalog.token_calls["authorization_code"] == 1
    assert session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "connection.connected")
    ).one()
    listed = svc.connections_list(session=session, org_id=org.id)
    assert [(c.provider_key, c.account_label) for c in listed] == [("testprov", "acme_marketing")]

    # The state works once.
    with pytest.raises(DomainError) as replay:
        svc.connection_connect_complete(
            session=session,
            user=owner,
            provider_key="testprov",
            state=state,
            code=code,
            redirect_uri=REDIRECT_URI,
        )
    assert replay.value.code == "oauth_state_invalid" and replay.value.details["org_slug"] == "acme"


def test_reconnect_updates_the_expired_connection(engine, session, org_setup, provider_catalog):
    org, owner, _ = org_setup
    expired_id = add_connection(
        engine, org.id, refresh_token=None, expires_in=timedelta(hours=-1), account_id="acct-42"
    )
    with Session(engine) as other:
        row = other.get(OAuthConnection, expired_id)
        row.status = "expired"
        row.last_error = "refused"
        other.add(row)
        other.commit()
    session.rollback()
    assert svc.connections_need_reconnect(session=session, org_id=org.id)

    url = svc.connection_connect_begin(
        session=session,
        user=owner,
        org_id=org.id,
        provider_key="testprov",
        redirect_uri=REDIRECT_URI,
        reconnect_connection_id=expired_id,
    )
    code, state = consent(url)
    view, _ = svc.connection_connect_complete(
        session=session,
        user=owner,
        provider_key="testprov",
        state=state,
        code=code,
        redirect_uri=REDIRECT_URI,
    )
    assert view.id == expired_id and view.status == "active" and view.last_error == ""
    assert not svc.connections_need_reconnect(session=session, org_id=org.id)
    assert session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "connection.reconnected")
    ).one()


def test_only_owners_and_admins_connect(engine, session, org_setup, provider_catalog):
    org, _, editor = org_setup
    with pytest.raises(PermissionDenied):
        svc.connection_connect_begin(
            session=session,
            user=editor,
            org_id=org.id,
            provider_key="testprov",
            redirect_uri=REDIRECT_URI,
        )


def test_another_person_cannot_finish_someone_elses_flow(
    engine, session, org_setup, provider_catalog
):
    org, owner, _ = org_setup
    admin = add_member(session, org, "admin@acme.test", "admin")
    session.commit()
    url = svc.connection_connect_begin(
        session=session,
        user=owner,
        org_id=org.id,
        provider_key="testprov",
        redirect_uri=REDIRECT_URI,
    )
    code, state = consent(url)
    with pytest.raises(DomainError) as refused:
        svc.connection_connect_complete(
            session=session,
            user=admin,
            provider_key="testprov",
            state=state,
            code=code,
            redirect_uri=REDIRECT_URI,
        )
    assert refused.value.code == "oauth_state_invalid"
    assert session.exec(select(OAuthConnection)).first() is None


def test_unconfigured_provider_names_the_env_vars(engine, session, org_setup, provider_catalog):
    org, owner, _ = org_setup
    with pytest.raises(DomainError) as refused:
        svc.connection_connect_begin(
            session=session,
            user=owner,
            org_id=org.id,
            provider_key="unset",
            redirect_uri=REDIRECT_URI,
        )
    assert refused.value.code == "connection_not_configured"
    assert "UNSET_PLATFORM_CLIENT_ID and UNSET_PLATFORM_CLIENT_SECRET" in refused.value.message


def test_disconnect_forgets_tokens_and_hides_the_connection(
    engine, session, org_setup, provider_catalog
):
    org, owner, editor = org_setup
    connection_id = add_connection(engine, org.id, refresh_token="r", expires_in=timedelta(hours=5))
    session.rollback()
    with pytest.raises(PermissionDenied):
        svc.connection_disconnect(
            session=session, user=editor, org_id=org.id, connection_id=connection_id
        )
    session.rollback()
    svc.connection_disconnect(
        session=session, user=owner, org_id=org.id, connection_id=connection_id
    )
    row = connection(engine, connection_id)
    assert (
        row.status == "revoked"
        and row.access_token_encrypted == ""
        and row.refresh_token_encrypted is None
    )
    assert svc.connections_list(session=session, org_id=org.id) == []


# --- refresh (SQLite; the PostgreSQL locking tests are in tests/db) ------------------------------


def test_refresh_rotates_tokens_and_marks_refused_ones_expired(
    engine, session, org_setup, provider_catalog
):
    org, _, _ = org_setup
    provider_catalog.valid_refresh.add("rt-good")
    good = add_connection(
        engine, org.id, refresh_token="rt-good", expires_in=timedelta(minutes=30), account_id="a"
    )
    refused = add_connection(
        engine, org.id, refresh_token="rt-revoked", expires_in=timedelta(minutes=10), account_id="b"
    )
    later = add_connection(
        engine, org.id, refresh_token="rt-later", expires_in=timedelta(hours=3), account_id="c"
    )
    no_refresh = add_connection(
        engine, org.id, refresh_token=None, expires_in=timedelta(minutes=-5), account_id="d"
    )
    session.rollback()

    result = svc.connections_refresh_due()

    assert (result.refreshed, result.expired, result.errors) == (1, 2, 0)
    row = connection(engine, good)
    assert row.status == "active" and row.last_error is None
    new_refresh = decrypt(row.refresh_token_encrypted)
    assert new_refresh != "rt-good" and new_refresh in provider_catalog.valid_refresh
    assert decrypt(row.access_token_encrypted).startswith("access-")
    assert clock.as_utc(row.expires_at) > clock.utcnow() + timedelta(minutes=59)
    gone = connection(engine, refused)
    assert gone.status == "expired" and "invalid_grant" in gone.last_error
    assert connection(engine, later).status == "active"
    assert connection(engine, no_refresh).status == "expired"
    assert provider_catalog.token_calls["refresh_token"] == 2
    assert svc.connections_need_reconnect(session=session, org_id=org.id)

    # Just refreshed: the next run leaves it alone even though 1-hour tokens are "due".
    session.rollback()
    assert svc.connections_refresh_due().refreshed == 0
    assert provider_catalog.token_calls["refresh_token"] == 2


def test_network_error_keeps_the_connection_active(
    engine, session, org_setup, provider_catalog, tmp_path, monkeypatch
):
    org, _, _ = org_setup
    dead = f"http://127.0.0.1:{free_port()}/token"  # nothing listens there
    path = tmp_path / "dead.toml"
    path.write_text(
        f"""
[[provider]]
key = "testprov"
name = "TestProv"
authorize_url = "{dead}"
token_url = "{dead}"
client_id_env = "TESTPROV_CLIENT_ID"
client_secret_env = "TESTPROV_CLIENT_SECRET"
"""
    )
    monkeypatch.setenv(svc.CATALOG_ENV, str(path))
    connection_id = add_connection(
        engine, org.id, refresh_token="rt", expires_in=timedelta(minutes=20)
    )
    session.rollback()

    result = svc.connections_refresh_due()

    assert (result.refreshed, result.expired, result.errors) == (0, 0, 1)
    row = connection(engine, connection_id)
    assert row.status == "active"
    assert "Could not reach TestProv" in row.last_error and "retry" in row.last_error
    assert decrypt(row.refresh_token_encrypted) == "rt"


# --- HTTP routes ----------------------------------------------------------------------------------


def _session_token(session: Session, user: User) -> str:
    from services.auth import session_activate, sign_in_handoff_create

    challenge = sign_in_handoff_create(session=session, user=user)
    session.commit()
    token, _ = session_activate(session=session, handoff_code=challenge.handoff_code)
    session.commit()
    return token


def _location(response) -> str:
    assert response.status_code == 303, response.text
    return response.headers["location"]


def test_http_routes_connect_and_return_to_settings(engine, session, org_setup, provider_catalog):
    from starlette.testclient import TestClient

    from creative_studio.api import connections_routes as r

    org, owner, editor = org_setup
    owner_token = _session_token(session, owner)
    editor_token = _session_token(session, editor)
    app = Starlette(
        routes=[
            Route(r.CONNECTIONS_START, r.connections_start),
            Route(r.CONNECTIONS_CALLBACK, r.connections_callback),
        ]
    )
    client = TestClient(app, base_url="http://localhost:8000", follow_redirects=False)

    signed_out = _location(client.get("/connections/testprov/start?org=acme"))
    assert "/sign-in?next=/org/acme/settings" in signed_out

    client.cookies.set("cs_session", editor_token)
    denied = _location(client.get("/connections/testprov/start?org=acme"))
    assert denied.endswith("/org/acme/settings?provider=testprov&connection_error=role_forbidden")

    client.cookies.set("cs_session", owner_token)
    to_provider = _location(client.get("/connections/testprov/start?org=acme"))
    assert to_provider.startswith(provider_catalog.base_url + "/authorize?")
    assert (
        "redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Fconnections%2Ftestprov%2Fcallback"
        in to_provider
    )
    code, state = consent(to_provider)
    back = _location(client.get(f"/connections/testprov/callback?code={code}&state={state}"))
    assert back.endswith("/org/acme/settings?provider=testprov&connection=connected")
    session.rollback()
    assert [c.account_label for c in svc.connections_list(session=session, org_id=org.id)] == [
        "acme_marketing"
    ]
    session.rollback()  # SQLite: every transaction is a writer; do not hold one across requests

    replay = _location(client.get(f"/connections/testprov/callback?code={code}&state={state}"))
    assert replay.endswith(
        "/org/acme/settings?provider=testprov&connection_error=oauth_state_invalid"
    )

    # Cancelled on the consent screen.
    to_provider = _location(client.get("/connections/testprov/start?org=acme"))
    _, state = consent(to_provider)
    cancelled = _location(
        client.get(f"/connections/testprov/callback?error=access_denied&state={state}")
    )
    assert cancelled.endswith(
        "/org/acme/settings?provider=testprov&connection_error=connection_denied"
    )

    unset = _location(client.get("/connections/unset/start?org=acme"))
    assert unset.endswith("connection_error=connection_not_configured")
    unknown_org = _location(client.get("/connections/testprov/start?org=nope"))
    assert unknown_org.endswith(
        "/org/nope/settings?provider=testprov&connection_error=org_not_found"
    )
