"""Connections: an organization's OAuth links to social and ad platforms (LinkedIn, Meta, ...).

Providers are data (``catalog/connections.toml``): endpoints, scopes and the names of the
environment variables holding the app's client id and secret. A provider whose variables are
unset is listed as "not configured" with the variables to set.

Connect flow (Authlib OAuth 2.0 client, authorization code + state + PKCE S256):
``connection_connect_begin`` stores the flow server-side (state hashed, PKCE verifier
encrypted, in ``OAuthFlowState`` with purpose ``connection``) and returns the provider's
consent URL; ``connection_connect_complete`` consumes the state once, re-checks that the
person may still manage connections, exchanges the code with the verifier and stores the
tokens encrypted (``core.crypto.encrypt``).

Hourly refresh (``connections_refresh_due``, run by the ``connections_refresh`` job): every
active connection expiring within the next hour is refreshed under a row lock (``SELECT ...
FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serializes writers with ``BEGIN IMMEDIATE``),
so two workers never spend the same (rotating) refresh token. A refusal by the provider
(``invalid_grant``) marks the connection ``expired`` with ``last_error``; a network error keeps
it ``active`` and the next run retries.

Transactions: the OAuth steps own their unit of work, because a provider's HTTP call sits
between two states that must be stored first: ``connection_connect_begin`` commits the flow
row before the browser leaves for the consent screen; ``connection_connect_complete`` commits
the flow's use (``_flow_consume``, part of its unit of work) before exchanging the code, so a
replay fails and no transaction is held while the provider answers, then commits the tokens.
``connection_disconnect`` commits, so the tokens are gone before anything else can spend them.
``connection_refresh_next`` opens and commits one unit of work per connection. Everything else
reads or flushes inside the caller's transaction.
"""

from __future__ import annotations

import logging
import os
import threading
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from sqlalchemy import bindparam
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from core import db, routes
from core.clock import as_utc, utcnow
from core.crypto import decrypt, encrypt, hash_token, new_token
from core.http import HTTP_ERRORS as _HTTP_ERRORS
from core.settings import PROJECT_ROOT
from models import OAuthConnection, OAuthFlowState, Organization, User
from models.enums import ConnectionStatus
from services import notifications, policy
from services.audit import audit_record
from services.error_codes import Code
from services.errors import DomainError, NotFound, error_with_code

log = logging.getLogger(__name__)

CATALOG_PATH = PROJECT_ROOT / "catalog" / "connections.toml"
CATALOG_ENV = "CS_CONNECTIONS_CATALOG"  # another catalog file (tests, private deployments)
FLOW_PURPOSE = "connection"
FLOW_TTL = timedelta(minutes=10)
REFRESH_WINDOW = timedelta(hours=1)
# A token refreshed this recently is not refreshed again (two workers in one hour, 1-hour tokens).
MIN_REFRESH_INTERVAL = timedelta(minutes=10)
HTTP_TIMEOUT_SECONDS = 10.0
_RECONNECT_PREFIX = "reconnect:"
_MAX_ERROR = 500


# --- provider catalog ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionProvider:
    key: str
    name: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    client_id_env: str
    client_secret_env: str
    token_endpoint_auth_method: str = "client_secret_post"
    authorize_params: tuple[tuple[str, str], ...] = ()
    refreshable: bool = True
    userinfo_url: str = ""
    account_id_field: str = ""
    account_label_field: str = ""

    @property
    def client_id(self) -> str:
        return os.environ.get(self.client_id_env, "").strip()

    @property
    def client_secret(self) -> str:
        return os.environ.get(self.client_secret_env, "").strip()

    @property
    def missing_env(self) -> list[str]:
        """Environment variables still to set before this provider can be connected."""
        return [
            name
            for name in (self.client_id_env, self.client_secret_env)
            if not os.environ.get(name, "").strip()
        ]

    @property
    def configured(self) -> bool:
        return not self.missing_env


_catalog_lock = threading.Lock()
_catalog_cache: dict[str, tuple[float, tuple[ConnectionProvider, ...]]] = {}


def _catalog_path() -> Path:
    return Path(os.environ.get(CATALOG_ENV) or CATALOG_PATH)


def _parse_provider(entry: dict[str, Any], path: Path) -> ConnectionProvider:
    try:
        return ConnectionProvider(
            key=str(entry["key"]),
            name=str(entry["name"]),
            authorize_url=str(entry["authorize_url"]),
            token_url=str(entry["token_url"]),
            scopes=tuple(str(scope) for scope in entry.get("scopes", [])),
            client_id_env=str(entry["client_id_env"]),
            client_secret_env=str(entry["client_secret_env"]),
            token_endpoint_auth_method=str(
                entry.get("token_endpoint_auth_method", "client_secret_post")
            ),
            authorize_params=tuple(
                (str(k), str(v)) for k, v in dict(entry.get("authorize_params", {})).items()
            ),
            refreshable=bool(entry.get("refreshable", True)),
            userinfo_url=str(entry.get("userinfo_url", "")),
            account_id_field=str(entry.get("account_id_field", "")),
            account_label_field=str(entry.get("account_label_field", "")),
        )
    except KeyError as exc:
        raise ValueError(
            f"{path}: provider {entry.get('key', '?')!r} lacks {exc.args[0]!r}"
        ) from None


def connection_providers() -> list[ConnectionProvider]:
    """Every provider of the catalog, in file order (re-read when the file changes)."""
    path = _catalog_path()
    mtime = path.stat().st_mtime
    with _catalog_lock:
        cached = _catalog_cache.get(str(path))
        if cached and cached[0] == mtime:
            return list(cached[1])
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    providers = tuple(_parse_provider(entry, path) for entry in data.get("provider", []))
    with _catalog_lock:
        _catalog_cache[str(path)] = (mtime, providers)
    return list(providers)


def connection_provider_get(key: str) -> ConnectionProvider:
    for provider in connection_providers():
        if provider.key == key:
            return provider
    raise error_with_code(
        Code.connection_provider_unknown,
        f"There is no connection type called {key!r}. Pick one from the list in Settings.",
        base=NotFound,
    )


# --- read models --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionView:
    """A connection as people see it (no tokens)."""

    id: int
    provider_key: str
    provider_name: str
    account_label: str
    scopes: tuple[str, ...]
    status: str
    expires_at: datetime | None
    last_refreshed_at: datetime | None
    last_error: str
    created_at: datetime

    @property
    def needs_reconnect(self) -> bool:
        return self.status == ConnectionStatus.expired.value


def _view(row: OAuthConnection, names: dict[str, str]) -> ConnectionView:
    return ConnectionView(
        id=row.id,
        provider_key=row.provider_key,
        provider_name=names.get(row.provider_key, row.provider_key),
        account_label=row.account_label,
        scopes=tuple(row.scopes or ()),
        status=row.status,
        expires_at=as_utc(row.expires_at),
        last_refreshed_at=as_utc(row.last_refreshed_at),
        last_error=row.last_error or "",
        created_at=as_utc(row.created_at),
    )


def connections_list(*, session: Session, org_id: int) -> list[ConnectionView]:
    """The org's connections (disconnected ones left out), expired first, then by provider."""
    names = {provider.key: provider.name for provider in connection_providers()}
    rows = session.exec(
        select(OAuthConnection)
        .where(
            OAuthConnection.org_id == org_id,
            OAuthConnection.status != ConnectionStatus.revoked.value,
        )
        .order_by(col(OAuthConnection.provider_key), col(OAuthConnection.id))
    ).all()
    views = [_view(row, names) for row in rows]
    return sorted(views, key=lambda view: not view.needs_reconnect)


# Built once: every org page open of an admin asks it.
_AN_EXPIRED_CONNECTION = (
    select(OAuthConnection.id)
    .where(
        OAuthConnection.org_id == bindparam("org_id"),
        OAuthConnection.status == ConnectionStatus.expired.value,
    )
    .limit(1)
)


def connections_need_reconnect(*, session: Session, org_id: int) -> bool:
    """Whether any of the org's connections expired (the red dot in the sidebar)."""
    found = session.exec(_AN_EXPIRED_CONNECTION, params={"org_id": org_id}).first()
    return found is not None


# --- errors -------------------------------------------------------------------------------------


def _not_configured(provider: ConnectionProvider) -> DomainError:
    return error_with_code(
        Code.connection_not_configured,
        f"{provider.name} is not set up on this server. An operator sets "
        f"{' and '.join(provider.missing_env)} and restarts the app.",
        http_status=409,
        provider=provider.key,
    )


def _state_invalid(org_slug: str = "") -> DomainError:
    return error_with_code(
        Code.oauth_state_invalid,
        "This connection link expired or was already used. Click Connect again in Settings.",
        http_status=400,
        org_slug=org_slug,
    )


def _token_failed(provider: ConnectionProvider, org_slug: str) -> DomainError:
    return error_with_code(
        Code.connection_token_failed,
        f"{provider.name} did not accept the authorization, so nothing was connected. "
        "Click Connect to try again.",
        http_status=401,
        org_slug=org_slug,
    )


def _unavailable(provider: ConnectionProvider, org_slug: str) -> DomainError:
    return error_with_code(
        Code.connection_unavailable,
        f"{provider.name} could not be reached, so nothing was connected. Try again in a minute.",
        http_status=502,
        org_slug=org_slug,
    )


# --- connect ------------------------------------------------------------------------------------


def _require_manage(session: Session, user: User, org_id: int) -> None:
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    policy.require(
        actor, policy.Action.connections_manage, policy.target_for(session=session, org_id=org_id)
    )


def _oauth_client(provider: ConnectionProvider, redirect_uri: str | None = None) -> OAuth2Client:
    return OAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        token_endpoint_auth_method=provider.token_endpoint_auth_method,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT_SECONDS,
    )


def connection_connect_begin(
    *,
    session: Session,
    user: User,
    org_id: int,
    provider_key: str,
    redirect_uri: str,
    reconnect_connection_id: int | None = None,
) -> str:
    """Start connecting (or reconnecting) a provider and return its consent-screen URL.

    Args:
        session: Database session; this service commits the flow row.
        user: The signed-in person (must be allowed `connections_manage` in the org).
        org_id: The organization to connect.
        provider_key: A key of catalog/connections.toml.
        redirect_uri: This server's callback URL for the provider, exactly as registered.
        reconnect_connection_id: The expired connection this flow replaces, if any.

    Raises:
        PermissionDenied / NotFound: from the policy (not an owner/admin, not a member).
        DomainError: `connection_provider_unknown`, `connection_not_configured`.
    """
    _require_manage(session, user, org_id)
    provider = connection_provider_get(provider_key)
    if not provider.configured:
        raise _not_configured(provider)
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound("There is no organization at this address that you belong to.")
    nonce = ""
    if reconnect_connection_id is not None:
        existing = session.get(OAuthConnection, reconnect_connection_id)
        if (
            existing is not None
            and existing.org_id == org_id
            and existing.provider_key == provider.key
        ):
            nonce = f"{_RECONNECT_PREFIX}{existing.id}"
    state = new_token(32)
    code_verifier = new_token(48)  # 64 characters, within RFC 7636's 43..128
    session.add(
        OAuthFlowState(
            state_hash=hash_token(state),
            purpose=FLOW_PURPOSE,
            provider_key=provider.key,
            code_verifier_encrypted=encrypt(code_verifier),
            nonce=nonce,
            user_id=user.id,
            org_id=org_id,
            redirect_after=routes.org_settings(org.slug),
            expires_at=utcnow() + FLOW_TTL,
        )
    )
    session.commit()
    with _oauth_client(provider, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            provider.authorize_url,
            state=state,
            code_verifier=code_verifier,
            scope=" ".join(provider.scopes),
            **dict(provider.authorize_params),
        )
    return url


def connection_flow_org_slug(*, session: Session, state: str) -> str:
    """The org slug a flow belongs to, for sending the browser back after an error ("" if unknown)."""
    if not state:
        return ""
    row = session.exec(
        select(OAuthFlowState).where(
            OAuthFlowState.state_hash == hash_token(state), OAuthFlowState.purpose == FLOW_PURPOSE
        )
    ).first()
    if row is None or row.org_id is None:
        return ""
    org = session.get(Organization, row.org_id)
    return org.slug if org is not None else ""


@dataclass(frozen=True)
class _Flow:
    provider_key: str
    code_verifier: str
    org_id: int
    org_slug: str
    reconnect_connection_id: int | None


def _flow_consume(session: Session, *, state: str, provider_key: str, user: User) -> _Flow:
    """Mark the flow used (committed at once, so a replay fails).

    Part of `connection_connect_complete`'s unit of work: it commits, or rolls back a refusal.
    """
    row = None
    if state:
        row = session.exec(
            select(OAuthFlowState)
            .where(
                OAuthFlowState.state_hash == hash_token(state),
                OAuthFlowState.purpose == FLOW_PURPOSE,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
    org = (
        session.get(Organization, row.org_id)
        if row is not None and row.org_id is not None
        else None
    )
    slug = org.slug if org is not None else ""
    if (
        row is None
        or org is None
        or row.used_at is not None
        or as_utc(row.expires_at) <= utcnow()
        or row.provider_key != provider_key
        or row.user_id != user.id  # another browser/person cannot finish someone's flow
    ):
        session.rollback()
        raise _state_invalid(slug)
    row.used_at = utcnow()
    session.add(row)
    session.commit()
    try:
        verifier = decrypt(row.code_verifier_encrypted)
    except ValueError as exc:  # SECRET_KEY changed mid-flow
        raise _state_invalid(slug) from exc
    reconnect_id = None
    if row.nonce.startswith(_RECONNECT_PREFIX):
        try:
            reconnect_id = int(row.nonce[len(_RECONNECT_PREFIX) :])
        except ValueError:
            reconnect_id = None
    return _Flow(provider_key, verifier, org.id, slug, reconnect_id)


def _dig(data: Any, dotted: str) -> str:
    for part in dotted.split(".") if dotted else []:
        if not isinstance(data, dict):
            return ""
        data = data.get(part)
    return "" if data is None or isinstance(data, dict | list) else str(data)


def _account_identity(client: OAuth2Client, provider: ConnectionProvider) -> tuple[str, str]:
    """(account id, label) from the provider's user-info endpoint; ("", "") when unavailable."""
    if not provider.userinfo_url:
        return "", ""
    try:
        response = client.get(provider.userinfo_url)
        response.raise_for_status()
        data = response.json()
    except (*_HTTP_ERRORS, ValueError, OAuthError):
        log.warning("%s: could not read the connected account's identity", provider.key)
        return "", ""
    return _dig(data, provider.account_id_field)[:255], _dig(data, provider.account_label_field)[
        :255
    ]


def _expires_at(token: dict[str, Any], now: datetime) -> datetime | None:
    expires_in = token.get("expires_in")
    try:
        if expires_in is not None:
            return now + timedelta(seconds=int(expires_in))
        if token.get("expires_at"):
            return datetime.fromtimestamp(int(token["expires_at"]), UTC)
    except (TypeError, ValueError):
        pass
    return None


def _granted_scopes(token: dict[str, Any], fallback: tuple[str, ...]) -> list[str]:
    scope = token.get("scope")
    if isinstance(scope, list):
        return [str(s) for s in scope]
    if isinstance(scope, str) and scope.strip():
        return [s for s in scope.replace(",", " ").split() if s]
    return list(fallback)


def connection_connect_complete(
    *, session: Session, user: User, provider_key: str, state: str, code: str, redirect_uri: str
) -> tuple[ConnectionView, str]:
    """Finish a connect flow: consume the state, exchange the code, store the tokens encrypted.

    A reconnect updates the expired connection; connecting an account already connected updates
    it; otherwise a new connection is created.

    Returns:
        The connection and the org slug (to send the browser back to its Settings).

    Raises:
        DomainError: `oauth_state_invalid`, `connection_token_failed`, `connection_unavailable`,
            `connection_not_configured`; PermissionDenied when the person lost the right to
            manage connections meanwhile. Errors carry `details["org_slug"]` when known.
    """
    provider = connection_provider_get(provider_key)
    flow = _flow_consume(session, state=state, provider_key=provider.key, user=user)
    try:
        _require_manage(session, user, flow.org_id)
    except DomainError as error:
        error.details.setdefault("org_slug", flow.org_slug)
        raise
    if not provider.configured:
        error = _not_configured(provider)
        error.details["org_slug"] = flow.org_slug
        raise error
    if not code:
        raise _token_failed(provider, flow.org_slug)
    try:
        with _oauth_client(provider, redirect_uri) as client:
            token = dict(
                client.fetch_token(
                    provider.token_url,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=flow.code_verifier,
                )
            )
            account_id, account_label = _account_identity(client, provider)
    except OAuthError as exc:
        raise _token_failed(provider, flow.org_slug) from exc
    except (*_HTTP_ERRORS, ValueError) as exc:
        raise _unavailable(provider, flow.org_slug) from exc
    access_token = token.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise _token_failed(provider, flow.org_slug)
    now = utcnow()
    row = session.exec(
        select(OAuthConnection)
        .where(
            OAuthConnection.org_id == flow.org_id,
            OAuthConnection.provider_key == provider.key,
            OAuthConnection.account_id == account_id,
        )
        .with_for_update()
    ).first()
    if row is None and flow.reconnect_connection_id is not None:
        candidate = session.get(OAuthConnection, flow.reconnect_connection_id, with_for_update=True)
        if (
            candidate is not None
            and candidate.org_id == flow.org_id
            and candidate.provider_key == provider.key
        ):
            row = candidate
    reconnect = row is not None
    if row is None:
        row = OAuthConnection(org_id=flow.org_id, provider_key=provider.key, account_id=account_id)
    row.account_id = account_id
    row.account_label = account_label or row.account_label or f"{provider.name} account"
    row.connected_by_user_id = user.id
    row.scopes = _granted_scopes(token, provider.scopes)
    row.access_token_encrypted = encrypt(access_token)
    refresh_token = token.get("refresh_token")
    row.refresh_token_encrypted = (
        encrypt(refresh_token) if isinstance(refresh_token, str) and refresh_token else None
    )
    row.expires_at = _expires_at(token, now)
    row.status = ConnectionStatus.active.value
    row.last_refreshed_at = now
    row.last_error = None
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # the same account was connected at the same moment
        session.rollback()
        raise _state_invalid(flow.org_slug) from None
    audit_record(
        session=session,
        action="connection.reconnected" if reconnect else "connection.connected",
        actor_user_id=user.id,
        org_id=flow.org_id,
        target_type="connection",
        target_id=row.id,
        details={"provider": provider.key, "account": row.account_label, "scopes": row.scopes},
    )
    session.commit()
    names = {provider.key: provider.name}
    return _view(row, names), flow.org_slug


def connection_disconnect(*, session: Session, user: User, org_id: int, connection_id: int) -> None:
    """Disconnect: forget the tokens and hide the connection (owners/admins).

    Owns its unit of work: commits, so the tokens are gone at once (the hourly refresh must
    not spend them).

    Raises:
        NotFound: no such connection in this org.
    """
    _require_manage(session, user, org_id)
    row = session.exec(
        select(OAuthConnection)
        .where(OAuthConnection.id == connection_id, OAuthConnection.org_id == org_id)
        .with_for_update()
    ).first()
    if row is None or row.status == ConnectionStatus.revoked.value:
        raise NotFound("That connection was not found; it may have been disconnected already.")
    row.status = ConnectionStatus.revoked.value
    row.access_token_encrypted = ""
    row.refresh_token_encrypted = None
    row.last_error = None
    session.add(row)
    audit_record(
        session=session,
        action="connection.disconnected",
        actor_user_id=user.id,
        org_id=org_id,
        target_type="connection",
        target_id=row.id,
        details={"provider": row.provider_key, "account": row.account_label},
    )
    session.commit()


# --- hourly refresh -----------------------------------------------------------------------------


@dataclass
class RefreshResult:
    refreshed: int = 0
    expired: int = 0
    errors: int = 0
    error_details: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        return self.refreshed + self.expired


def _due_query(now: datetime, window: timedelta, after_id: int):
    return (
        select(OAuthConnection)
        .where(
            OAuthConnection.status == ConnectionStatus.active.value,
            col(OAuthConnection.expires_at).is_not(None),
            col(OAuthConnection.expires_at) <= now + window,
            or_(
                col(OAuthConnection.last_refreshed_at).is_(None),
                col(OAuthConnection.last_refreshed_at) <= now - MIN_REFRESH_INTERVAL,
            ),
            col(OAuthConnection.id) > after_id,
        )
        .order_by(col(OAuthConnection.id))
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )


def _mark_expired(
    session: Session, row: OAuthConnection, reason: str, result: RefreshResult
) -> None:
    row.status = ConnectionStatus.expired.value
    row.last_error = reason[:_MAX_ERROR]
    session.add(row)
    audit_record(
        session=session,
        action="connection.expired",
        actor_user_id=None,
        org_id=row.org_id,
        target_type="connection",
        target_id=row.id,
        details={"provider": row.provider_key, "reason": row.last_error},
    )
    result.expired += 1
    # This refresh holds the row (SKIP LOCKED) and moved it from active: one mail per expiry.
    try:
        name = connection_provider_get(row.provider_key).name
    except DomainError:
        name = row.provider_key
    notifications.connection_expired_notify(session=session, connection=row, provider_name=name)


def _refresh_locked(
    session: Session,
    row: OAuthConnection,
    provider: ConnectionProvider | None,
    now: datetime,
    result: RefreshResult,
) -> None:
    """Refresh one connection whose row this transaction holds locked."""
    name = provider.name if provider is not None else row.provider_key
    if provider is None:
        result.errors += 1
        result.error_details.append(
            f"connection {row.id}: provider {row.provider_key!r} is not in the catalog"
        )
        return
    expired_now = row.expires_at is not None and as_utc(row.expires_at) <= now
    if not provider.refreshable or not row.refresh_token_encrypted:
        if expired_now:
            _mark_expired(
                session,
                row,
                f"The access to {name} ended and {name} gave no refresh token. Reconnect to continue.",
                result,
            )
        return
    if not provider.configured:
        row.last_error = f"Cannot refresh: set {' and '.join(provider.missing_env)} on the server."
        session.add(row)
        result.errors += 1
        result.error_details.append(f"connection {row.id}: {row.last_error}")
        return
    try:
        refresh_token = decrypt(row.refresh_token_encrypted)
    except ValueError:
        _mark_expired(
            session,
            row,
            f"The stored {name} token cannot be read (SECRET_KEY changed). Reconnect.",
            result,
        )
        return
    try:
        with _oauth_client(provider) as client:
            token = dict(client.refresh_token(provider.token_url, refresh_token=refresh_token))
    except OAuthError as exc:
        code = getattr(exc, "error", "") or "error"
        if code == "invalid_grant":
            _mark_expired(
                session,
                row,
                f"{name} refused to renew the access ({code}); it was probably revoked or expired. Reconnect.",
                result,
            )
            return
        row.last_error = f"{name} refused the refresh ({code}); will retry next hour."[:_MAX_ERROR]
        session.add(row)
        result.errors += 1
        result.error_details.append(f"connection {row.id}: {code}")
        return
    except (*_HTTP_ERRORS, ValueError) as exc:
        row.last_error = (
            f"Could not reach {name} to refresh ({exc.__class__.__name__}); will retry next hour."[
                :_MAX_ERROR
            ]
        )
        session.add(row)
        result.errors += 1
        result.error_details.append(f"connection {row.id}: {exc.__class__.__name__}: {exc}"[:300])
        return
    access_token = token.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        row.last_error = (
            f"{name} answered the refresh without an access token; will retry next hour."
        )
        session.add(row)
        result.errors += 1
        result.error_details.append(f"connection {row.id}: no access_token in the refresh response")
        return
    row.access_token_encrypted = encrypt(access_token)
    new_refresh = token.get("refresh_token")
    if isinstance(new_refresh, str) and new_refresh and new_refresh != refresh_token:
        row.refresh_token_encrypted = encrypt(new_refresh)  # rotated: the old one is now spent
    row.expires_at = _expires_at(token, now)
    if token.get("scope"):
        row.scopes = _granted_scopes(token, tuple(row.scopes or ()))
    row.last_refreshed_at = now
    row.last_error = None
    session.add(row)
    result.refreshed += 1


def connection_refresh_next(
    *,
    engine: Engine,
    now: datetime,
    window: timedelta,
    after_id: int,
    providers: dict[str, ConnectionProvider],
    result: RefreshResult,
) -> int | None:
    """Claim and refresh the next due connection after `after_id`, in its own transaction.

    Returns its id, or None when nothing (unlocked) is due.
    """
    with Session(engine, expire_on_commit=False) as session:
        row = session.exec(_due_query(now, window, after_id)).first()
        if row is None:
            session.rollback()
            return None
        try:
            _refresh_locked(session, row, providers.get(row.provider_key), now, result)
            session.commit()
        except Exception as exc:  # keep going with the others; recorded in the job run
            session.rollback()
            result.errors += 1
            result.error_details.append(
                f"connection {row.id}: {exc.__class__.__name__}: {exc}"[:300]
            )
            log.exception("refreshing connection %s failed", row.id)
        return row.id


def connections_refresh_due(
    *, engine: Engine | None = None, now: datetime | None = None, window: timedelta = REFRESH_WINDOW
) -> RefreshResult:
    """Refresh every active connection expiring within `window` (default: the next hour).

    Each connection is claimed with ``FOR UPDATE SKIP LOCKED`` and refreshed while locked, so a
    second worker skips it instead of spending the same refresh token.
    """
    engine = engine or db.get_engine()
    now = now or utcnow()
    providers = {provider.key: provider for provider in connection_providers()}
    result = RefreshResult()
    after_id = 0
    while True:
        claimed = connection_refresh_next(
            engine=engine,
            now=now,
            window=window,
            after_id=after_id,
            providers=providers,
            result=result,
        )
        if claimed is None:
            break
        after_id = claimed
    if result.refreshed or result.expired or result.errors:
        log.info(
            "connections refresh: %d refreshed, %d expired, %d errors",
            result.refreshed,
            result.expired,
            result.errors,
        )
    return result
