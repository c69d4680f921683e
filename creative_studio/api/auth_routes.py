"""Session cookie routes: swap a one-time sign-in code for an HttpOnly cookie, and clear it."""

from __future__ import annotations

import reflex as rx
from starlette.requests import Request
from starlette.responses import RedirectResponse

from core import db, routes
from core.clock import as_utc, utcnow
from core.settings import get_settings
from services import auth as auth_service
from services.errors import DomainError


def frontend_url(path: str) -> str:
    base = (rx.config.get_config().deploy_url or get_settings().app_base_url).rstrip("/")
    return f"{base}{path}"


def _cookie_secure() -> bool:
    return frontend_url("/").startswith("https://")


async def session_handoff(request: Request) -> RedirectResponse:
    code = request.query_params.get("code", "")
    next_path = request.query_params.get("next", routes.INDEX)
    if not routes.is_safe_next(next_path):
        next_path = routes.INDEX
    try:
        with db.session_scope() as session:
            token, user_session = auth_service.session_activate(session=session, handoff_code=code)
    except DomainError:
        return RedirectResponse(frontend_url(routes.SIGN_IN + "?expired=1"), status_code=303)
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
    response.headers["Cache-Control"] = "no-store"
    return response
