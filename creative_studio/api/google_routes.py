"""Google sign-in routes: send the browser to Google, and take it back through the session handoff."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse

from core import db, routes
from core.settings import get_settings
from creative_studio.api.auth_routes import browser_binding, frontend_url, set_browser_binding
from services import auth as auth_service
from services import oidc
from services.error_codes import Code
from services.errors import DomainError

logger = logging.getLogger(__name__)

GOOGLE_START = routes.API_GOOGLE_START
GOOGLE_CALLBACK = routes.API_GOOGLE_CALLBACK


def google_redirect_uri() -> str:
    """The callback URL registered at Google; it must match exactly."""
    return get_settings().backend_base_url + GOOGLE_CALLBACK


def _redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def _sign_in_error(code: str, next_path: str = "") -> RedirectResponse:
    query = {"error": code}
    if next_path and next_path != routes.INDEX:
        query["next"] = next_path
    return _redirect(frontend_url(routes.SIGN_IN + "?" + urlencode(query)))


def _begin(next_path: str, binding: str) -> str:
    with db.new_session() as session:  # the sign-in service commits its steps
        return oidc.google_sign_in_begin(
            session=session,
            redirect_uri=google_redirect_uri(),
            next_path=next_path,
            browser_binding=binding,
        )


async def google_start(request: Request) -> RedirectResponse:
    """GET /auth/google/start?next=/path -> 303 to Google's consent screen.

    The flow is bound to this browser's pre-auth cookie (set here when it has none): only
    this browser can complete it at the callback.
    """
    next_path = request.query_params.get("next", routes.INDEX)
    if not routes.is_safe_next(next_path):
        next_path = routes.INDEX
    if not get_settings().google_enabled:
        return _sign_in_error(Code.google_disabled, next_path)
    binding = browser_binding(request)
    new_binding = not auth_service.browser_binding_usable(binding)
    if new_binding:
        binding = auth_service.browser_binding_new()
    try:
        url = await run_in_threadpool(_begin, next_path, binding)
    except DomainError as error:
        return _sign_in_error(error.code, next_path)
    except Exception:  # never show a stack trace; the sign-in page explains the code
        logger.exception("Google sign-in could not start")
        return _sign_in_error(Code.google_failed, next_path)
    response = _redirect(url)
    if new_binding:
        set_browser_binding(response, binding)
    return response


def _complete(state: str, code: str, ip_address: str, user_agent: str, binding: str):
    with db.new_session() as session:  # the sign-in service commits its steps
        return oidc.google_sign_in_complete(
            session=session,
            state=state,
            code=code,
            redirect_uri=google_redirect_uri(),
            ip_address=ip_address,
            user_agent=user_agent,
            browser_binding=binding,
        )


async def google_callback(request: Request) -> RedirectResponse:
    """GET /auth/google/callback?code&state (or ?error) -> the session handoff or the sign-in page.

    Only the browser that started the flow (same pre-auth cookie) gets through; any other is
    sent to the sign-in page with `sign_in_other_browser`.
    """
    if not get_settings().google_enabled:
        return _sign_in_error(Code.google_disabled)
    params = request.query_params
    if params.get("error"):
        # The person cancelled on Google's consent screen, or Google refused the request.
        code = Code.google_denied if params.get("error") == "access_denied" else Code.google_failed
        return _sign_in_error(code)
    state, code = params.get("state", ""), params.get("code", "")
    if not state or not code:
        return _sign_in_error(Code.oauth_state_invalid)
    ip_address = request.client.host if request.client else ""
    user_agent = request.headers.get("user-agent", "")
    try:
        challenge, next_path = await run_in_threadpool(
            _complete, state, code, ip_address, user_agent, browser_binding(request)
        )
    except DomainError as error:
        return _sign_in_error(error.code)
    except Exception:
        logger.exception("Google sign-in could not complete")
        return _sign_in_error(Code.google_failed)
    if not routes.is_safe_next(next_path):
        next_path = routes.INDEX
    if challenge.mfa_required:
        query = urlencode({"google_mfa": challenge.handoff_code, "next": next_path})
        return _redirect(frontend_url(routes.SIGN_IN + "?" + query))
    query = urlencode({"code": challenge.handoff_code, "next": next_path})
    return _redirect(get_settings().backend_base_url + routes.API_AUTH_SESSION + "?" + query)
