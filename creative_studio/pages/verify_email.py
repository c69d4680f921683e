"""/verify-email?token=...: confirm an address. Without a token: ask for a new link.

State: state/verify_email.py.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import callout_box, error_callout, field, success_callout
from creative_studio.layout import centered_card
from state.verify_email import VerifyEmailState


@rx.page(
    route=routes.VERIFY_EMAIL, title="Verify email · Creative Studio", on_load=VerifyEmailState.load
)
def verify_email_page() -> rx.Component:
    return centered_card(
        rx.heading("Verify your email", size="6", as_="h1"),
        rx.cond(
            VerifyEmailState.verified_email != "",
            rx.vstack(
                callout_box(
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
