"""Forgot password (request a link) and reset password (set a new one from the link)."""

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


class PasswordResetState(rx.State):
    error: str = ""
    notice: str = ""
    done: bool = False

    @rx.event
    def load(self):
        self.error = self.notice = ""
        self.done = False

    @rx.event
    def request_link(self, form: dict):
        email = str(form.get("email", "")).strip()
        if "@" not in email:
            self.error = "Enter the email address of your account."
            return
        with Session(get_engine()) as session:
            auth_service.password_reset_request(
                session=session, email=email, base_url=get_settings().app_base_url
            )
        self.error = ""
        # Same answer whether or not the account exists.
        self.notice = f"If an account exists for {email}, a reset link is on its way. It works once, within 1 hour."

    @rx.event
    def set_password(self, form: dict):
        token = self.router.url.query_parameters.get("token", "")
        password = str(form.get("password", ""))
        if password != str(form.get("password_confirm", "")):
            self.error = "The two passwords differ. Type the same password in both fields."
            return
        with Session(get_engine()) as session:
            try:
                auth_service.password_reset_complete(
                    session=session, token=token, new_password=password
                )
            except DomainError as error:
                self.error = error.message
                return
        self.error = ""
        self.done = True


@rx.page(
    route=routes.FORGOT_PASSWORD,
    title="Forgot password · Creative Studio",
    on_load=PasswordResetState.load,
)
def forgot_password_page() -> rx.Component:
    return centered_card(
        rx.heading("Reset your password", size="6", as_="h1"),
        error_callout(PasswordResetState.error),
        success_callout(PasswordResetState.notice),
        rx.form(
            rx.vstack(
                field("Email", "email", "email", "username", required=True),
                rx.button("Send reset link", type="submit", size="3", width="100%"),
                spacing="3",
                width="100%",
            ),
            on_submit=PasswordResetState.request_link,
            width="100%",
        ),
        rx.link("Back to sign in", href=routes.SIGN_IN, size="2"),
    )


@rx.page(
    route=routes.RESET_PASSWORD,
    title="Choose a new password · Creative Studio",
    on_load=PasswordResetState.load,
)
def reset_password_page() -> rx.Component:
    return centered_card(
        rx.heading("Choose a new password", size="6", as_="h1"),
        error_callout(PasswordResetState.error),
        rx.cond(
            PasswordResetState.done,
            rx.vstack(
                rx.callout(
                    "Your password was changed and every session was signed out. Sign in with the new password.",
                    icon="circle-check",
                    color_scheme="green",
                    role="status",
                ),
                rx.link(
                    rx.button("Sign in", size="3", width="100%"), href=routes.SIGN_IN, width="100%"
                ),
                width="100%",
            ),
            rx.form(
                rx.vstack(
                    field(
                        "New password",
                        "password",
                        "password",
                        "new-password",
                        required=True,
                        hint="At least 12 characters, not a common password, not your email.",
                    ),
                    field(
                        "Repeat new password",
                        "password_confirm",
                        "password",
                        "new-password",
                        required=True,
                    ),
                    rx.button("Set new password", type="submit", size="3", width="100%"),
                    spacing="3",
                    width="100%",
                ),
                on_submit=PasswordResetState.set_password,
                width="100%",
            ),
        ),
    )
