"""Single sign-on routes: send the browser to the organization's identity provider, and take it
back through the same session handoff as a password or Google sign-in.

`/auth/sso/start?org=<slug>&next=` starts a sign-in; `/auth/sso/test?org=<slug>` starts an
owner's test sign-in (the owner is the one of the session cookie, re-checked by the service's
policy call); `/auth/sso/callback` is the one redirect URI registered at the provider, for both.
Every flow is bound to the browser's pre-auth cookie, as Google sign-in is.
"""

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
from services import sso as sso_service
from services.error_codes import Code
from services.errors import DomainError

logger = logging.getLogger(__name__)

SSO_START = routes.API_SSO_START
SSO_CALLBACK = routes.API_SSO_CALLBACK
SSO_TEST = routes.API_SSO_TEST
_MAX_SLUG = 64
_MAX_PARAM = 2000


def _redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def _sign_in_error(code: str, next_path: str = "") -> RedirectResponse:
    query = {"error": code}
    if next_path and next_path != routes.INDEX and routes.is_safe_next(next_path):
        query["next"] = next_path
    return _redirect(frontend_url(routes.SIGN_IN + "?" + urlencode(query)))


def _binding(request: Request) -> tuple[str, bool]:
    binding = browser_binding(request)
    if auth_service.browser_binding_usable(binding):
        return binding, False
    return auth_service.browser_binding_new(), True


def _go(url: str, binding: str, new_binding: bool) -> RedirectResponse:
    response = _redirect(url)
    if new_binding:
        set_browser_binding(response, binding)
    return response


def _begin(org_slug: str, next_path: str, binding: str) -> str:
    with db.new_session() as session:  # the service commits the flow
        return sso_service.sso_sign_in_begin(
            session=session, org_slug=org_slug, next_path=next_path, browser_binding=binding
        )


async def sso_start(request: Request) -> RedirectResponse:
    """GET /auth/sso/start?org=<slug>&next=/path -> 303 to the organization's IdP."""
    org_slug = request.query_params.get("org", "")[:_MAX_SLUG].lower()
    next_path = request.query_params.get("next", routes.INDEX)
    if not routes.is_safe_next(next_path):
        next_path = routes.INDEX
    binding, new_binding = _binding(request)
    try:
        url = await run_in_threadpool(_begin, org_slug, next_path, binding)
    except DomainError as error:
        return _sign_in_error(error.code, next_path)
    except Exception:  # never a stack trace; the sign-in page explains the code
        logger.exception("SSO sign-in could not start")
        return _sign_in_error(Code.sso_failed, next_path)
    return _go(url, binding, new_binding)


def _test_begin(token: str, org_slug: str, binding: str) -> str:
    with db.new_session() as session:  # session_resolve commits its touch; the service, the flow
        resolved = auth_service.session_resolve(session=session, token=token) if token else None
        if resolved is None:
            raise _SignedOut()
        user, _ = resolved
        return sso_service.sso_test_begin(
            session=session, actor=user, org_slug=org_slug, browser_binding=binding
        )


class _SignedOut(Exception):
    pass


async def sso_test(request: Request) -> RedirectResponse:
    """GET /auth/sso/test?org=<slug> -> 303 to the IdP for the owner's test sign-in."""
    org_slug = request.query_params.get("org", "")[:_MAX_SLUG].lower()
    settings_path = routes.org_sso_settings(org_slug) if org_slug else routes.INDEX
    token = request.cookies.get(routes.SESSION_COOKIE, "")
    binding, new_binding = _binding(request)
    try:
        url = await run_in_threadpool(_test_begin, token, org_slug, binding)
    except _SignedOut:
        return _redirect(frontend_url(routes.sign_in(settings_path)))
    except DomainError as error:
        return _redirect(frontend_url(settings_path + "?" + urlencode({"test": error.code})))
    except Exception:
        logger.exception("SSO test could not start")
        return _redirect(frontend_url(settings_path + "?" + urlencode({"test": "sso_failed"})))
    return _go(url, binding, new_binding)


def _complete(state: str, code: str, ip_address: str, user_agent: str, binding: str):
    with db.new_session() as session:  # the service commits its steps
        return sso_service.sso_complete(
            session=session,
            state=state,
            code=code,
            ip_address=ip_address,
            user_agent=user_agent,
            browser_binding=binding,
        )


def _callback_error(state: str, error: str, description: str):
    with db.new_session() as session:
        return sso_service.sso_callback_error(
            session=session, state=state, error=error, description=description
        )


def _after_test(outcome: sso_service.SsoOutcome) -> RedirectResponse:
    query = {"test": outcome.test_error_code or "ok"}
    return _redirect(frontend_url(outcome.next_path + "?" + urlencode(query)))


async def sso_callback(request: Request) -> RedirectResponse:
    """GET /auth/sso/callback?code&state (or ?error) -> the session handoff, the sign-in page,
    or (after an owner's test) the Security & SSO settings page."""
    params = request.query_params
    state = params.get("state", "")[:_MAX_PARAM]
    if params.get("error"):
        try:
            outcome = await run_in_threadpool(
                _callback_error,
                state,
                params.get("error", "")[:100],
                params.get("error_description", "")[:500],
            )
        except Exception:
            logger.exception("SSO error callback could not be recorded")
            return _sign_in_error(Code.sso_failed)
        if outcome.purpose == sso_service.SSO_TEST_PURPOSE:
            return _after_test(outcome)
        return _sign_in_error(outcome.test_error_code)
    code = params.get("code", "")[:_MAX_PARAM]
    if not state:
        return _sign_in_error(Code.oauth_state_invalid)
    ip_address = request.client.host if request.client else ""
    user_agent = request.headers.get("user-agent", "")
    try:
        outcome = await run_in_threadpool(
            _complete, state, code, ip_address, user_agent, browser_binding(request)
        )
    except DomainError as error:
        return _sign_in_error(error.code)
    except Exception:
        logger.exception("SSO sign-in could not complete")
        return _sign_in_error(Code.sso_failed)
    if outcome.purpose == sso_service.SSO_TEST_PURPOSE:
        return _after_test(outcome)
    challenge = outcome.challenge
    next_path = outcome.next_path if routes.is_safe_next(outcome.next_path) else routes.INDEX
    if challenge.mfa_required:
        # Same second step as Google sign-in: the sign-in page asks for the code.
        query = urlencode({"google_mfa": challenge.handoff_code, "next": next_path})
        return _redirect(frontend_url(routes.SIGN_IN + "?" + query))
    query = urlencode({"code": challenge.handoff_code, "next": next_path})
    return _redirect(get_settings().backend_base_url + routes.API_AUTH_SESSION + "?" + query)
