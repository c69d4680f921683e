"""Create an account; a verification link goes to the address (resend offered here)."""

from __future__ import annotations

from urllib.parse import parse_qs

import reflex as rx
from sqlmodel import Session

from core.db import get_engine
from core.settings import get_settings
from core import routes
from creative_studio.components.forms import error_callout, field, success_callout
from creative_studio.layout import centered_card
from services import auth as auth_service
from services import invites as invite_service
from services.errors import DomainError


class RegisterState(rx.State):
    # Where to go after signing in (e.g. back to /invite?token=...): backend-only.
    _next_path: str = ""
    verified_by_invite: bool = False
    error: str = ""
    error_field: str = ""
    registered_email: str = ""
    notice: str = ""
    locked_email: str = ""  # pre-filled and locked when arriving from an invitation

    @rx.event
    def load(self):
        self.error = self.error_field = self.notice = ""
        self.registered_email = ""
        self.locked_email = self.router.url.query_parameters.get("email", "").strip().lower()
        next_path = self.router.url.query_parameters.get("next", "")
        self._next_path = next_path if routes.is_safe_next(next_path) else ""
        self.verified_by_invite = False

    def _invite_token(self) -> str:
        """The token of an invite this registration came from ("" otherwise)."""
        path, _, query = self._next_path.partition("?")
        if path != routes.INVITE:
            return ""
        return parse_qs(query).get("token", [""])[0]

    @rx.event
    def submit(self, form: dict):
        email = self.locked_email or str(form.get("email", ""))
        if str(form.get("password", "")) != str(form.get("password_confirm", "")):
            self.error_field = "password_confirm"
            self.error = "The two passwords differ. Type the same password in both fields."
            return
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                user = auth_service.user_register(
                    session=session,
                    email=email,
                    password=str(form.get("password", "")),
                    name=str(form.get("name", "")),
                    base_url=get_settings().app_base_url,
                )
            except DomainError as error:
                self.error, self.error_field = error.message, str(error.details.get("field") or "")
                return
            token = self._invite_token()
            if token and invite_service.invite_confirms_email(
                session=session, token=token, user=user
            ):
                session.commit()
                self.verified_by_invite = True
        self.error = self.error_field = ""
        self.registered_email = user.email

    @rx.event
    def continue_to_sign_in(self):
        return rx.redirect(routes.sign_in(self._next_path or None))

    @rx.event
    def resend(self):
        if not self.registered_email:
            return
        with Session(get_engine()) as session:
            auth_service.verification_resend(
                session=session, email=self.registered_email, base_url=get_settings().app_base_url
            )
        self.notice = f"We sent a new verification link to {self.registered_email}. Older links no longer work."


def _form() -> rx.Component:
    return rx.form(
        rx.vstack(
            field("Name", "name", autocomplete="name", required=True),
            rx.cond(
                RegisterState.locked_email != "",
                field(
                    "Email",
                    "email",
                    "email",
                    "username",
                    value=RegisterState.locked_email,
                    read_only=True,
                    hint="This invitation is for this address.",
                ),
                field("Email", "email", "email", "username", required=True),
            ),
            field(
                "Password",
                "password",
                "password",
                "new-password",
                required=True,
                hint="At least 12 characters, not a common password, not your email.",
            ),
            field("Repeat password", "password_confirm", "password", "new-password", required=True),
            rx.button("Create account", type="submit", size="3", width="100%"),
            spacing="4",
            width="100%",
        ),
        on_submit=RegisterState.submit,
        reset_on_submit=False,
        width="100%",
    )


def _check_inbox() -> rx.Component:
    return rx.vstack(
        rx.cond(
            RegisterState.verified_by_invite,
            rx.callout(
                rx.text(
                    "Account created for ",
                    rx.text.strong(RegisterState.registered_email),
                    ". Your invitation confirmed this address, so no verification email is "
                    "needed. Sign in to join the organization.",
                ),
                icon="mail-check",
                color_scheme="green",
                role="status",
            ),
            _verification_sent(),
        ),
        rx.button(
            "Continue to sign in",
            width="100%",
            size="3",
            on_click=RegisterState.continue_to_sign_in,
        ),
        spacing="3",
        width="100%",
    )


def _verification_sent() -> rx.Component:
    return rx.vstack(
        rx.callout(
            rx.text(
                "Account created. We sent a verification link to ",
                rx.text.strong(RegisterState.registered_email),
                ". Open it to start using models; it expires in 24 hours.",
            ),
            icon="mail-check",
            color_scheme="green",
            role="status",
        ),
        success_callout(RegisterState.notice),
        rx.button(
            "Resend verification email", variant="soft", on_click=RegisterState.resend, width="100%"
        ),
        spacing="3",
        width="100%",
    )


@rx.page(
    route=routes.REGISTER, title="Create account · Creative Studio", on_load=RegisterState.load
)
def register_page() -> rx.Component:
    return centered_card(
        rx.heading("Create your account", size="6", as_="h1"),
        error_callout(RegisterState.error),
        rx.cond(RegisterState.registered_email != "", _check_inbox(), _form()),
        rx.text("Already have an account? ", rx.link("Sign in", href=routes.SIGN_IN), size="2"),
    )
