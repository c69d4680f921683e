"""Connection routes: send the browser to a platform's consent screen and take it back to Settings.

GET /connections/<provider>/start?org=<slug>[&reconnect=<id>]  -> 303 to the provider
GET /connections/<provider>/callback?code&state (or ?error)    -> 303 to /org/<slug>/settings

The person is the one of the `cs_session` cookie (services.auth.session_resolve); the policy
(`connections_manage`) is re-checked by the service at both ends. Errors become a message code
in the Settings URL (`?connection_error=<code>&provider=<key>`), never a stack trace.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse

from core import db, routes
from core.settings import get_settings
from creative_studio.api.auth_routes import frontend_url
from services import auth as auth_service
from services import connections as connections_service
from services import orgs as org_service
from services.error_codes import Code
from services.errors import DomainError

logger = logging.getLogger(__name__)

CONNECTIONS_START = routes.API_CONNECTIONS_START
CONNECTIONS_CALLBACK = routes.API_CONNECTIONS_CALLBACK


def connections_redirect_uri(provider_key: str) -> str:
    """The callback URL to register at the provider; it must match exactly."""
    return get_settings().backend_base_url + routes.connections_callback(provider_key)


def _redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def _settings_path(slug: str) -> str:
    return routes.org_settings(slug) if slug else routes.INDEX


def _back_to_settings(
    slug: str, provider_key: str, *, error: str = "", connected: bool = False
) -> RedirectResponse:
    query = {"provider": provider_key}
    if error:
        query["connection_error"] = error
    if connected:
        query["connection"] = "connected"
    return _redirect(frontend_url(_settings_path(slug) + "?" + urlencode(query)))


def _user_from_cookie(session: Session, request: Request):
    token = request.cookies.get(routes.SESSION_COOKIE, "")
    resolved = auth_service.session_resolve(session=session, token=token) if token else None
    return resolved[0] if resolved else None


def _begin(
    request: Request, provider_key: str, slug: str, reconnect_id: int | None
) -> tuple[str, str]:
    """Returns ("redirect", url) or ("sign_in", "")."""
    with db.new_session() as session:  # the connection services commit their steps
        user = _user_from_cookie(session, request)
        if user is None:
            return "sign_in", ""
        org = org_service.org_by_slug(session=session, slug=slug)
        url = connections_service.connection_connect_begin(
            session=session,
            user=user,
            org_id=org.id,
            provider_key=provider_key,
            redirect_uri=connections_redirect_uri(provider_key),
            reconnect_connection_id=reconnect_id,
        )
        return "redirect", url


async def connections_start(request: Request) -> RedirectResponse:
    """GET /connections/<provider>/start?org=<slug> -> 303 to the provider's consent screen."""
    provider_key = request.path_params.get("provider", "")
    slug = routes.org_slug_from_path("/org/" + request.query_params.get("org", "").strip("/"))
    reconnect_raw = request.query_params.get("reconnect", "")
    reconnect_id = int(reconnect_raw) if reconnect_raw.isdigit() else None
    if not slug:
        return _redirect(frontend_url(routes.INDEX))
    try:
        outcome, url = await run_in_threadpool(_begin, request, provider_key, slug, reconnect_id)
    except DomainError as error:
        return _back_to_settings(slug, provider_key, error=error.code)
    except Exception:  # never a stack trace; Settings explains the code
        logger.exception("connection to %s could not start", provider_key)
        return _back_to_settings(slug, provider_key, error="connection_failed")
    if outcome == "sign_in":
        return _redirect(frontend_url(routes.sign_in(_settings_path(slug))))
    return _redirect(url)


def _complete(request: Request, provider_key: str, state: str, code: str) -> tuple[str, str]:
    """Returns (org slug, "") on success, or (slug, error code)."""
    with db.new_session() as session:  # the connection services commit their steps
        user = _user_from_cookie(session, request)
        if user is None:
            slug = connections_service.connection_flow_org_slug(session=session, state=state)
            return slug, "signed_out"
        try:
            _view, slug = connections_service.connection_connect_complete(
                session=session,
                user=user,
                provider_key=provider_key,
                state=state,
                code=code,
                redirect_uri=connections_redirect_uri(provider_key),
            )
        except DomainError as error:
            session.rollback()
            slug = str(error.details.get("org_slug") or "")
            if not slug:
                slug = connections_service.connection_flow_org_slug(session=session, state=state)
            return slug, error.code
        return slug, ""


def _flow_slug(state: str) -> str:
    with db.new_session() as session:
        return connections_service.connection_flow_org_slug(session=session, state=state)


async def connections_callback(request: Request) -> RedirectResponse:
    """GET /connections/<provider>/callback?code&state (or ?error) -> back to the org's Settings."""
    provider_key = request.path_params.get("provider", "")
    params = request.query_params
    state, code = params.get("state", ""), params.get("code", "")
    try:
        if params.get("error"):
            # The person cancelled on the consent screen, or the provider refused the request.
            slug = await run_in_threadpool(_flow_slug, state)
            error = (
                "connection_denied"
                if params.get("error") == "access_denied"
                else "connection_failed"
            )
            return _back_to_settings(slug, provider_key, error=error)
        if not state or not code:
            slug = await run_in_threadpool(_flow_slug, state)
            return _back_to_settings(slug, provider_key, error=Code.oauth_state_invalid)
        slug, error = await run_in_threadpool(_complete, request, provider_key, state, code)
    except Exception:
        logger.exception("connection to %s could not complete", provider_key)
        return _redirect(frontend_url(routes.INDEX))
    if error == "signed_out":
        return _redirect(frontend_url(routes.sign_in(_settings_path(slug))))
    if error:
        return _back_to_settings(slug, provider_key, error=error)
    return _back_to_settings(slug, provider_key, connected=True)
