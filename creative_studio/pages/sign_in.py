"""Sign in with email and password (then a 2FA code when enrolled). State: state/sign_in.py."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, field
from creative_studio.components.prefetch import prefetch_page
from creative_studio.layout import centered_card
from state.navigation import backend_url
from state.sign_in import SignInState


def _password_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            field("Email", "email", "email", "username", required=True),
            field("Password", "password", "password", "current-password", required=True),
            rx.button("Sign in", type="submit", size="3", width="100%"),
            spacing="4",
            width="100%",
        ),
        on_submit=SignInState.submit_password,
        reset_on_submit=False,
        width="100%",
    )


def _sso_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.text(
                "Enter your work email: if your organization uses single sign-on, you continue "
                "at its identity provider.",
                size="2",
            ),
            field("Work email", "email", "email", "username", required=True),
            rx.button("Continue with single sign-on", type="submit", size="3", width="100%"),
            rx.link(
                "Use email and password instead",
                on_click=SignInState.show_sso(False),
                size="2",
                href="#",
            ),
            spacing="4",
            width="100%",
        ),
        on_submit=SignInState.submit_sso,
        reset_on_submit=False,
        width="100%",
    )


def _sso_link() -> rx.Component:
    return rx.cond(
        SignInState.sso_mode | SignInState.needs_code | ~SignInState.browser_ready,
        rx.fragment(),
        rx.button(
            rx.icon("building-2", size=16),
            "Use single sign-on (SSO)",
            variant="outline",
            size="3",
            width="100%",
            type="button",
            on_click=SignInState.show_sso(True),
        ),
    )


def _preparing() -> rx.Component:
    """While this browser gets its sign-in cookie (one quick round trip), or why it cannot."""
    return rx.cond(
        SignInState.error_code == "cookies_required",
        rx.link(rx.button("Reload the page", size="3", width="100%"), href=routes.SIGN_IN),
        rx.hstack(
            rx.spinner(size="2"),
            rx.text("Preparing a secure sign-in for this browser…", size="2"),
            align="center",
            spacing="2",
            role="status",
        ),
    )


def _code_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.text("Two-factor authentication is on for this account.", size="2"),
            field(
                "Authentication code",
                "code",
                "text",
                "one-time-code",
                input_mode="numeric",
                required=True,
                placeholder="123456 or a recovery code",
            ),
            rx.button("Verify and sign in", type="submit", size="3", width="100%"),
            rx.link("Use a different account", on_click=SignInState.reset_form, size="2", href="#"),
            spacing="4",
            width="100%",
        ),
        on_submit=SignInState.submit_code,
        width="100%",
    )


@rx.page(route=routes.SIGN_IN, title="Sign in · Creative Studio", on_load=SignInState.reset_form)
def sign_in_page() -> rx.Component:
    return centered_card(
        rx.heading("Sign in", size="6", as_="h1"),
        error_callout(SignInState.error),
        rx.cond(
            SignInState.needs_code,
            _code_form(),
            rx.cond(
                SignInState.browser_ready,
                rx.cond(SignInState.sso_mode, _sso_form(), _password_form()),
                _preparing(),
            ),
        ),
        _sso_link(),
        rx.cond(
            SignInState.google_enabled & ~SignInState.needs_code,
            rx.vstack(
                rx.divider(),
                rx.link(
                    rx.button(
                        rx.icon("log-in", size=16),
                        "Continue with Google",
                        variant="outline",
                        size="3",
                        width="100%",
                    ),
                    href=backend_url(routes.API_GOOGLE_START),
                    width="100%",
                ),
                width="100%",
            ),
        ),
        rx.hstack(
            rx.link("Create an account", href=routes.REGISTER, size="2"),
            rx.link("Forgot password?", href=routes.FORGOT_PASSWORD, size="2"),
            justify="between",
            width="100%",
        ),
        rx.link(
            "Didn't get the verification email? Resend it",
            href=routes.VERIFY_EMAIL,
            size="1",
            color_scheme="gray",
        ),
        # Where a sign-in usually lands (`sign_in_landing_path`): its code is fetched while the
        # person types, so the page after the handoff loads it from the cache.
        rx.cond(SignInState.browser_ready, prefetch_page(routes.org_home("_"))),
    )
