"""Sign in with email and password (then a 2FA code when enrolled), handing the session cookie
over to the backend route that sets it.

The sign-in is bound to this browser (login CSRF, see `services.auth`): the password is only
taken once this tab's websocket carries the browser's pre-auth cookie. Its Cookie header is
fixed when the websocket connects, so when the cookie is missing, `reset_form` sends the
browser once through `/auth/sign-in`, which sets it and returns here with `browser=1`; the
form shows only when the cookie is there (`browser_ready`). Should it still be missing after
that round trip, cookies are blocked, and the page says so.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlencode

import reflex as rx

from core import db, routes
from core.settings import get_settings
from services import auth as auth_service
from services import sso as sso_service
from services.error_codes import Code
from services.errors import DomainError
from state.navigation import backend_url, navigate
from state.org_page import MAX_EMAIL_INPUT, MAX_HANDOFF_CODE_CHARS, bounded, form_fields

_REDIRECT_ERRORS = {
    "google_disabled": "Google sign-in is not set up on this server. Sign in with your email and password.",
    "google_denied": "Google sign-in was cancelled. Try again, or sign in with your email and password.",
    "oauth_state_invalid": "This Google sign-in link expired or was already used. Start again below.",
    "google_email_unverified": "Google has not verified that email address, so it cannot be linked to an "
    "existing account. Sign in with your password instead.",
    "google_email_missing": "Google did not share an email address. Sign in with your email and password.",
    "google_account_mismatch": "This email is already linked to a different Google account. Sign in with "
    "that Google account or with your password.",
    "account_locked": "Too many failed sign-ins. Wait 15 minutes or reset your password.",
    "google_failed": "Google sign-in failed. Try again in a moment, or sign in with your email and password.",
    "sign_in_other_browser": auth_service.SIGN_IN_OTHER_BROWSER_MESSAGE,
}

COOKIES_REQUIRED_MESSAGE = (
    "Signing in needs a cookie that ties the sign-in to this browser, and this browser did not "
    "keep it. Allow cookies for this site (or leave private mode), then reload this page."
)


class SignInState(rx.State):
    _handoff_code: str = ""
    error: str = ""
    error_code: str = ""
    needs_code: bool = False
    working: bool = False
    # This tab's websocket carries the browser's pre-auth cookie: the form may be shown.
    browser_ready: bool = False
    # "Sign in with single sign-on": only the email is asked, then the organization's IdP.
    sso_mode: bool = False

    @rx.var
    def google_enabled(self) -> bool:
        return get_settings().google_enabled

    def _next_path(self) -> str:
        target = self.router.url.query_parameters.get("next", "")
        return target if routes.is_safe_next(target) else routes.INDEX

    def _browser_binding(self) -> str:
        """The pre-auth cookie this tab's websocket carries ("" when none)."""
        try:
            jar = SimpleCookie(self.router.headers.cookie or "")
        except CookieError:
            return ""
        morsel = jar.get(auth_service.browser_binding_cookie().name)
        value = morsel.value if morsel else ""
        return value if auth_service.browser_binding_usable(value) else ""

    def _bind_browser(self):
        """One round trip through the route that sets the pre-auth cookie, back to this page."""
        query = self.router.url.query_parameters
        self.browser_ready = False
        return navigate(
            backend_url(
                routes.sign_in_start(
                    query.get("next") or None,
                    error=query.get("error", "")[:64],
                    expired=bool(query.get("expired")),
                )
            )
        )

    def _finish(self):
        query = urlencode({"code": self._handoff_code, "next": self._next_path()})
        self._handoff_code = ""
        self.needs_code = False
        return navigate(backend_url(routes.API_AUTH_SESSION) + "?" + query)

    @rx.event
    def reset_form(self):
        self.error = self.error_code = ""
        self.needs_code = self.sso_mode = False
        self._handoff_code = ""
        self.working = False
        query = self.router.url.query_parameters
        if query.get("google_mfa"):
            # Google confirmed who this is; 2FA is on, so the code is still needed.
            self._handoff_code = bounded(query["google_mfa"], MAX_HANDOFF_CODE_CHARS)
            self.needs_code = True
        elif query.get("error"):
            self.error_code = query["error"][:64]
            self.error = _REDIRECT_ERRORS.get(self.error_code) or (
                sso_service.SIGN_IN_ERROR_MESSAGES.get(
                    self.error_code, _REDIRECT_ERRORS["google_failed"]
                )
            )
            self.sso_mode = self.error_code.startswith("sso_")
        elif query.get("expired"):
            self.error_code = "sign_in_expired"
            self.error = "That sign-in link expired or was already used. Sign in again."
        if self._browser_binding():
            self.browser_ready = True
            return
        self.browser_ready = False
        if query.get(routes.SIGN_IN_BROWSER_CHECKED):
            # The cookie was just set and did not come back: this browser refuses cookies.
            self.error_code, self.error = Code.cookies_required.value, COOKIES_REQUIRED_MESSAGE
            return
        return self._bind_browser()

    @rx.event
    def submit_password(self, form: dict):
        form = form_fields(form)
        email = str(form.get("email", "")).strip()
        password = str(form.get("password", ""))
        if not email or not password:
            self.error_code = "validation_failed"
            self.error = "Enter your email and password to sign in."
            return
        binding = self._browser_binding()
        if not binding:  # the form is only shown with one; the cookie went away meanwhile
            return self._bind_browser()
        headers = self.router.headers
        with db.new_session() as session:
            try:
                challenge = auth_service.sign_in_password(
                    session=session,
                    email=email,
                    password=password,
                    ip_address=self.router.session.client_ip or "",
                    user_agent=headers.user_agent or "",
                    browser_binding=binding,
                )
                session.commit()
            except DomainError as error:
                session.commit()  # failed-attempt counters must persist
                self.error_code, self.error = error.code, error.message
                self.sso_mode = error.code == Code.sso_required
                return
        self.error = self.error_code = ""
        self._handoff_code = challenge.handoff_code
        if challenge.mfa_required:
            self.needs_code = True
            return
        return self._finish()

    @rx.event
    def show_sso(self, on: bool):
        """Switch between the password form and the single sign-on form."""
        self.sso_mode = bool(on) if isinstance(on, bool) else False
        self.error = self.error_code = ""

    @rx.event
    def submit_sso(self, form: dict):
        """Email on a verified domain of an organization with SSO on -> that organization's IdP."""
        form = form_fields(form)
        email = bounded(form.get("email", ""), MAX_EMAIL_INPUT).strip()
        if not email or "@" not in email:
            self.error_code = "validation_failed"
            self.error = "Enter your work email address, for example name@example.com."
            return
        with db.new_session() as session:
            route = sso_service.sso_route_for_email(session=session, email=email)
        if route is None:
            domain = email.rpartition("@")[2][:100]
            self.error_code = Code.sso_not_configured.value
            self.error = (
                f"No organization signs in {domain} addresses with single sign-on here. Sign in "
                "with your email and password instead."
            )
            return
        self.error = self.error_code = ""
        next_path = self._next_path()
        return navigate(
            backend_url(
                routes.sso_start(route.org_slug, None if next_path == routes.INDEX else next_path)
            )
        )

    @rx.event
    def submit_code(self, form: dict):
        form = form_fields(form)
        code = str(form.get("code", "")).strip().replace(" ", "")
        if not self._handoff_code:
            self.needs_code = False
            self.error_code, self.error = (
                "session_expired",
                "Your sign-in expired. Enter your password again.",
            )
            return
        if not code:
            self.error_code, self.error = (
                "totp_required",
                "Enter the 6-digit code from your authenticator app, or a recovery code.",
            )
            return
        with db.new_session() as session:
            try:
                auth_service.sign_in_complete_mfa(
                    session=session, handoff_code=self._handoff_code, code=code
                )
                session.commit()
            except DomainError as error:
                session.commit()
                self.error_code, self.error = error.code, error.message
                return
        self.error = self.error_code = ""
        return self._finish()
