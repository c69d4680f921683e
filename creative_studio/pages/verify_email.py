"""/verify-email?token=...: confirm an address. Without a token: ask for a new link."""

from __future__ import annotations

import reflex as rx
from sqlmodel import Session

from core.db import get_engine
from core.settings import get_settings
from core import routes
from creative_studio.components.forms import error_callout, field, success_callout
from creative_studio.layout import centered_card
from services import auth as auth_service
from services.errors import DomainError


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
            with Session(get_engine(), expire_on_commit=False) as session:
                try:
                    user = auth_service.email_verify(session=session, token=token)
                    self.verified_email = user.email
                except DomainError as error:
                    self.error = error.message
        self.checked = True

    @rx.event
    def resend(self, form: dict):
        email = str(form.get("email", "")).strip()
        if "@" not in email:
            self.error = "Enter the email address you registered with."
            return
        with Session(get_engine()) as session:
            auth_service.verification_resend(
                session=session, email=email, base_url=get_settings().app_base_url
            )
        self.error = ""
        self.notice = (
            f"If an unverified account exists for {email}, a new verification link is on its way. "
            "It expires in 24 hours; older links no longer work."
        )


@rx.page(
    route=routes.VERIFY_EMAIL, title="Verify email · Creative Studio", on_load=VerifyEmailState.load
)
def verify_email_page() -> rx.Component:
    return centered_card(
        rx.heading("Verify your email", size="6", as_="h1"),
        rx.cond(
            VerifyEmailState.verified_email != "",
            rx.vstack(
                rx.callout(
                    rx.text(
                        rx.text.strong(VerifyEmailState.verified_email),
                        " is verified. You can now use models.",
                    ),
                    icon="circle-check",
                    color_scheme="green",
                    role="status",
                ),
                rx.link(
                    rx.button("Continue", size="3", width="100%"), href=routes.INDEX, width="100%"
                ),
                width="100%",
            ),
            rx.vstack(
                error_callout(VerifyEmailState.error),
                success_callout(VerifyEmailState.notice),
                rx.text(
                    "Need a new verification link? Enter your email and we'll send one.", size="2"
                ),
                rx.form(
                    rx.vstack(
                        field("Email", "email", "email", "username", required=True),
                        rx.button("Send verification link", type="submit", size="3", width="100%"),
                        spacing="3",
                        width="100%",
                    ),
                    on_submit=VerifyEmailState.resend,
                    width="100%",
                ),
                rx.link("Back to sign in", href=routes.SIGN_IN, size="2"),
                spacing="4",
                width="100%",
            ),
        ),
    )
