"""Forgot password (request a link) and reset password (set a new one from the link).

A request is answered at once, before the account is even looked up: the lookup, the link and
the mail happen on a background thread (`services.auth.password_reset_request_later`), so
neither the answer nor its timing tells whether an account exists.
"""

from __future__ import annotations

import reflex as rx

from core import db
from core.settings import get_settings
from services import auth as auth_service
from services.errors import DomainError
from state.org_page import bounded, form_fields

MAX_TOKEN_CHARS = 256


class PasswordResetState(rx.State):
    error: str = ""
    notice: str = ""
    done: bool = False
    link_usable: bool = True  # a used, expired or broken link shows why instead of the form

    def _clear(self) -> None:
        self.error = self.notice = ""
        self.done = False
        self.link_usable = True

    @rx.event
    def load(self):
        self._clear()

    @rx.event
    def load_reset(self):
        """/reset-password: check the link first, so a dead one says so before any typing."""
        self._clear()
        token = bounded(self.router.url.query_parameters.get("token", ""), MAX_TOKEN_CHARS)
        with db.new_session() as session:
            try:
                auth_service.password_reset_link_check(session=session, token=token)
            except DomainError as error:
                self.error = error.message
                self.link_usable = False

    @rx.event
    def request_link(self, form: dict):
        form = form_fields(form)
        email = str(form.get("email", "")).strip()
        if "@" not in email:
            self.error = "Enter the email address of your account."
            return
        auth_service.password_reset_request_later(email=email, base_url=get_settings().app_base_url)
        self.error = ""
        # Same answer whether or not the account exists.
        self.notice = (
            f"If an account exists for {email[:320]}, a reset link is on its way. It works once, "
            "within 1 hour."
        )

    @rx.event
    def set_password(self, form: dict):
        form = form_fields(form)
        token = bounded(self.router.url.query_parameters.get("token", ""), MAX_TOKEN_CHARS)
        password = str(form.get("password", ""))
        if password != str(form.get("password_confirm", "")):
            self.error = "The two passwords differ. Type the same password in both fields."
            return
        with db.new_session() as session:
            try:
                auth_service.password_reset_complete(
                    session=session, token=token, new_password=password
                )
            except DomainError as error:
                self.error = error.message
                return
        self.error = ""
        self.done = True
