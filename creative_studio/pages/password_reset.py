"""Forgot password (request a link) and reset password (set a new one from the link).

State: state/password_reset.py.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, field, success_callout
from creative_studio.layout import centered_card
from state.password_reset import PasswordResetState


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
    on_load=PasswordResetState.load_reset,
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
            rx.cond(
                ~PasswordResetState.link_usable,
                rx.link(
                    rx.button("Request a new link", size="3", width="100%", tab_index=-1),
                    href=routes.FORGOT_PASSWORD,
                    width="100%",
                    underline="none",
                ),
                _new_password_form(),
            ),
        ),
    )


def _new_password_form() -> rx.Component:
    return rx.form(
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
    )
