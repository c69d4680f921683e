"""Session cookie routes: swap a one-time sign-in code for an HttpOnly cookie, and clear it.

Also the pre-auth cookie that binds a sign-in to the browser that started it (login CSRF; see
`services.auth`): `/auth/sign-in` sets it and returns to the sign-in page, and every route
here that leads to the sign-in page sets it on the way, so that page's websocket (whose Cookie
header is fixed when it connects) carries it. `/auth/session` swaps a code only for the
browser whose cookie was stored with it.
"""

from __future__ import annotations

from urllib.parse import urlencode

import reflex as rx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import db, routes
from core.clock import as_utc, utcnow
from core.settings import get_settings
from services import auth as auth_service
from services.error_codes import Code
from services.errors import DomainError


def frontend_url(path: str) -> str:
    base = (rx.config.get_config().deploy_url or get_settings().app_base_url).rstrip("/")
    return f"{base}{path}"


def _cookie_secure() -> bool:
    return frontend_url("/").startswith("https://")


def browser_binding(request: Request) -> str:
    """This browser's pre-auth cookie ("" when it has none)."""
    return request.cookies.get(auth_service.browser_binding_cookie().name, "")


def ensure_browser_binding(request: Request, response: Response) -> str:
    """The browser's pre-auth cookie; a new one is set on `response` when it has none.

    An existing value is never replaced: other tabs of the same browser may be signing in
    with it. A session cookie (no Max-Age): it ends with the browser.
    """
    value = browser_binding(request)
    if auth_service.browser_binding_usable(value):
        return value
    value = auth_service.browser_binding_new()
    set_browser_binding(response, value)
    return value


def set_browser_binding(response: Response, value: str) -> None:
    """Set the pre-auth cookie: HttpOnly, SameSite=Lax, Secure and __Host- over https."""
    cookie = auth_service.browser_binding_cookie()
    response.set_cookie(
        cookie.name, value, httponly=True, secure=cookie.secure, samesite="lax", path="/"
    )


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


async def sign_in_start(request: Request) -> RedirectResponse:
    """GET /auth/sign-in?next=/path: give this browser its pre-auth cookie, open sign-in.

    The sign-in page comes back with `browser=1`, so if the cookie still does not arrive
    (cookies blocked) it says so instead of sending the browser here again.
    """
    params = request.query_params
    next_path = params.get("next", "")
    query = {}
    if routes.is_safe_next(next_path) and next_path != routes.SIGN_IN:
        query["next"] = next_path
    if params.get("error"):  # a code the sign-in page explains (it ignores unknown ones)
        query["error"] = params["error"][:64]
    if params.get("expired"):
        query["expired"] = "1"
    query[routes.SIGN_IN_BROWSER_CHECKED] = "1"
    response = RedirectResponse(
        frontend_url(routes.SIGN_IN + "?" + urlencode(query)), status_code=303
    )
    ensure_browser_binding(request, response)
    return _no_store(response)


async def session_handoff(request: Request) -> RedirectResponse:
    code = request.query_params.get("code", "")
    next_path = request.query_params.get("next", routes.INDEX)
    if not routes.is_safe_next(next_path):
        next_path = routes.INDEX
    try:
        with db.session_scope() as session:
            token, user_session = auth_service.session_activate(
                session=session, handoff_code=code, browser_binding=browser_binding(request)
            )
            if next_path == routes.INDEX:  # straight to the workspace, not through `/`
                next_path = auth_service.sign_in_landing_path(
                    session=session, user_id=user_session.user_id
                )
    except DomainError as error:
        # Another browser's sign-in link signs nobody in here; this browser may sign in itself.
        query = (
            {"error": Code.sign_in_other_browser.value}
            if error.code == Code.sign_in_other_browser
            else {"expired": "1"}
        )
        refused = RedirectResponse(
            frontend_url(routes.SIGN_IN + "?" + urlencode(query)), status_code=303
        )
        ensure_browser_binding(request, refused)
        return _no_store(refused)
    response = RedirectResponse(frontend_url(next_path), status_code=303)
    max_age = int((as_utc(user_session.expires_at) - utcnow()).total_seconds())
    response.set_cookie(
        routes.SESSION_COOKIE,
        token,
        max_age=max(max_age, 60),
        httponly=True,
        secure=_cookie_secure(),
        samesite="lax",
        path="/",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def sign_out(request: Request) -> RedirectResponse:
    """Clear the session cookie once its session has ended.

    The sign-out event revokes the session over the websocket first, then navigates here.
    A live session is never ended by this GET, so a link on another site cannot sign anyone
    out (the cookie is SameSite=Lax, which still sends it on top-level navigations).
    """
    token = request.cookies.get(routes.SESSION_COOKIE, "")
    if token:
        with db.new_session() as session:  # session_resolve commits its touch
            if auth_service.session_resolve(session=session, token=token) is not None:
                return RedirectResponse(frontend_url(routes.INDEX), status_code=303)
    response = RedirectResponse(frontend_url(routes.SIGN_IN), status_code=303)
    response.delete_cookie(routes.SESSION_COOKIE, path="/")
    ensure_browser_binding(request, response)  # the sign-in page it opens can bind at once
    return _no_store(response)
