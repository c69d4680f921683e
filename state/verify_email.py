"""/verify-email?token=...: confirm an address. Without a token: ask for a new link."""

from __future__ import annotations

import reflex as rx

from core import db
from core.settings import get_settings
from services import auth as auth_service
from services.errors import DomainError
from state.org_page import bounded, form_fields

# The longest address an account can have (it is echoed in the notice).
EMAIL_MAX_CHARS = 320


class VerifyEmailState(rx.State):
    verified_email: str = ""
    error: str = ""
    notice: str = ""
    checked: bool = False

    @rx.event
    def load(self):
        self.verified_email = self.error = self.notice = ""
        token = self.router.url.query_parameters.get("token", "")
        if token:
            with db.new_session() as session:
                try:
                    user = auth_service.email_verify(session=session, token=token)
                    self.verified_email = user.email
                except DomainError as error:
                    self.error = error.message
        self.checked = True

    @rx.event
    def resend(self, form: dict):
        email = bounded(form_fields(form).get("email", ""), EMAIL_MAX_CHARS).strip()
        if "@" not in email:
            self.error = "Enter the email address you registered with."
            return
        with db.session_scope() as session:
            auth_service.verification_resend(
                session=session, email=email, base_url=get_settings().app_base_url
            )
        self.error = ""
        self.notice = (
            f"If an unverified account exists for {email}, a new verification link is on its way. "
            "It expires in 24 hours; older links no longer work."
        )
