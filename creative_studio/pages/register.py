"""Create an account; a verification link goes to the address (resend offered here).

State: state/register.py.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import (
    callout_box,
    error_callout,
    field,
    submit_button,
    success_callout,
    token_input,
)
from creative_studio.layout import centered_card
from state.register import RegisterState


def _invalid(name: str) -> dict:
    """Marks the field a refusal names (its `field`) as invalid for screen readers; the
    message above the form says what is wrong with it."""
    return {"aria_invalid": rx.cond(RegisterState.error_field == name, "true", "false")}


def _form() -> rx.Component:
    return rx.form(
        rx.vstack(
            field("Name", "name", autocomplete="name", required=True, **_invalid("name")),
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
                field("Email", "email", "email", "username", required=True, **_invalid("email")),
            ),
            field(
                "Password",
                "password",
                "password",
                "new-password",
                required=True,
                hint="At least 12 characters, not a common password, not your email.",
                **_invalid("password"),
            ),
            field(
                "Repeat password",
                "password_confirm",
                "password",
                "new-password",
                required=True,
                **_invalid("password_confirm"),
            ),
            token_input(RegisterState.form_token),
            submit_button("Create account", pending=RegisterState.pending, size="3", width="100%"),
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
            callout_box(
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
        callout_box(
            rx.text(
                "Check your inbox: we sent an email to ",
                rx.text.strong(RegisterState.registered_email),
                ". For a new account it holds a verification link: open it to start using "
                "models (it expires in 24 hours). If this address already has an account, the "
                "email says so and how to sign in or reset the password instead.",
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
