"""Settings: Security (2FA, sessions, password) for the signed-in user; the organization's
connections; API access later. State: state/settings.py and state/connections.py."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, field, success_callout
from creative_studio.components.page import card, muted, table
from creative_studio.layout import app_shell
from creative_studio.pages.connections import connections_section
from state.connections import ConnectionsState
from state.session import SessionState
from state.settings import SecurityState, SessionRow


def _password_form(label: str, handler, button: str, color: str = "gray") -> rx.Component:
    """A password-confirmed action (2FA changes need the password again)."""
    return rx.form(
        rx.hstack(
            rx.box(
                field(
                    label,
                    "password",
                    "password",
                    "current-password",
                    field_id=f"pw-{button.lower().replace(' ', '-')}",
                    required=True,
                ),
                flex="1",
                min_width="14rem",
            ),
            rx.button(button, type="submit", variant="soft", color_scheme=color, size="3"),
            align="end",
            spacing="3",
            width="100%",
            wrap="wrap",
        ),
        on_submit=handler,
        reset_on_submit=True,
        width="100%",
    )


def _two_factor_card() -> rx.Component:
    return card(
        "Two-factor authentication",
        muted(
            "A code from an authenticator app is asked after your password. Turning it on "
            "signs out your other devices and browsers."
        ),
        rx.cond(
            SecurityState.new_recovery_codes.length() > 0,
            rx.vstack(
                rx.text(
                    "Recovery codes: each works once if you lose your phone. Store them somewhere safe.",
                    weight="medium",
                    size="2",
                ),
                rx.grid(
                    rx.foreach(SecurityState.new_recovery_codes, lambda c: rx.code(c, size="3")),
                    columns="2",
                    spacing="2",
                ),
                rx.hstack(
                    rx.button(
                        rx.icon("copy", size=14),
                        "Copy codes",
                        type="button",
                        variant="soft",
                        on_click=[
                            rx.set_clipboard(SecurityState.new_recovery_codes.join("\n")),
                            rx.toast.success("Recovery codes copied."),
                        ],
                    ),
                    rx.button(
                        rx.icon("download", size=14),
                        "Download codes",
                        type="button",
                        variant="soft",
                        on_click=rx.download(
                            data=SecurityState.new_recovery_codes.join("\n"),
                            filename="creative-studio-recovery-codes.txt",
                        ),
                    ),
                    rx.button(
                        "I saved my recovery codes",
                        on_click=SecurityState.hide_recovery_codes,
                        variant="soft",
                    ),
                    spacing="2",
                    wrap="wrap",
                ),
                spacing="3",
                aria_label="Recovery codes",
            ),
        ),
        rx.cond(
            SecurityState.enrolling,
            rx.vstack(
                rx.text(
                    "1. Scan this QR code with your authenticator app, or enter the key by hand.",
                    size="2",
                ),
                rx.box(
                    rx.html(SecurityState.enrolment_qr_svg),
                    aria_label="QR code for your authenticator app",
                    role="img",
                ),
                rx.text("Key: ", rx.code(SecurityState.enrolment_key), size="2"),
                rx.form(
                    rx.hstack(
                        rx.box(
                            field(
                                "2. Enter the 6-digit code it shows",
                                "code",
                                "text",
                                "one-time-code",
                                field_id="totp-code",
                                input_mode="numeric",
                                required=True,
                            ),
                            flex="1",
                        ),
                        rx.button("Turn on 2FA", type="submit", size="3"),
                        rx.button(
                            "Cancel",
                            type="button",
                            variant="ghost",
                            size="3",
                            on_click=SecurityState.cancel_enrolment,
                        ),
                        align="end",
                        spacing="3",
                        wrap="wrap",
                    ),
                    on_submit=SecurityState.confirm_enrolment,
                    width="100%",
                ),
                spacing="3",
                width="100%",
            ),
            rx.cond(
                SecurityState.totp_enabled,
                rx.vstack(
                    rx.text(
                        SecurityState.recovery_remaining,
                        " unused recovery codes left.",
                        size="2",
                    ),
                    _password_form(
                        "Password (to regenerate recovery codes)",
                        SecurityState.regenerate_codes,
                        "New recovery codes",
                    ),
                    _password_form(
                        "Password (to use a new authenticator app)",
                        SecurityState.reconfigure_totp,
                        "Reconfigure",
                    ),
                    _password_form(
                        "Password (to turn 2FA off)",
                        SecurityState.disable_totp,
                        "Turn off 2FA",
                        "red",
                    ),
                    spacing="3",
                    width="100%",
                ),
                rx.button(
                    rx.icon("shield-check", size=16),
                    "Set up two-factor authentication",
                    on_click=SecurityState.start_enrolment,
                ),
            ),
        ),
        aside=rx.cond(
            SecurityState.totp_enabled,
            rx.badge("On", color_scheme="green"),
            rx.badge("Off", color_scheme="gray"),
        ),
    )


def _session_row(row: SessionRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.hstack(
                rx.text(row.device),
                rx.cond(row.current, rx.badge("This device", color_scheme="iris")),
                spacing="2",
            )
        ),
        rx.table.cell(row.ip_address),
        rx.table.cell(row.created),
        rx.table.cell(row.last_seen),
        rx.table.cell(
            rx.cond(
                row.current,
                rx.text("—", color=rx.color("gray", 9)),
                rx.button(
                    "Sign out",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=SecurityState.end_session(row.id),
                ),
            )
        ),
    )


def _sessions_card() -> rx.Component:
    return card(
        "Active sessions",
        table(
            ["Device", "IP address", "Created", "Last seen", ""],
            rx.foreach(SecurityState.sessions, _session_row),
        ),
        aside=rx.button(
            "Sign out everywhere else",
            variant="soft",
            color_scheme="red",
            size="2",
            on_click=SecurityState.end_other_sessions,
        ),
        spacing="3",
    )


def _password_card() -> rx.Component:
    return card(
        "Change password",
        rx.form(
            rx.vstack(
                field(
                    "Current password",
                    "current_password",
                    "password",
                    "current-password",
                    required=True,
                ),
                field(
                    "New password",
                    "new_password",
                    "password",
                    "new-password",
                    required=True,
                    hint="At least 12 characters, not a common password, not your email.",
                ),
                field(
                    "Repeat new password",
                    "new_password_confirm",
                    "password",
                    "new-password",
                    required=True,
                ),
                muted(
                    "Changing your password signs out every other device and browser; you "
                    "stay signed in here."
                ),
                rx.button("Change password", type="submit"),
                spacing="3",
                width="100%",
                max_width="28rem",
            ),
            on_submit=SecurityState.change_password,
            reset_on_submit=True,
            width="100%",
        ),
        spacing="3",
    )


def _api_links_card() -> rx.Component:
    """Where the organization's API keys, API controls and request log live (owners, admins)."""
    slug = SessionState.org_slug
    return card(
        "API access",
        muted("Keys for the OpenAI-compatible /v1 API, allowed models, and every request made."),
        rx.flex(
            rx.link("API keys", href="/org/" + slug + "/settings/api"),
            rx.link("Logs", href="/org/" + slug + "/settings/logs"),
            spacing="4",
            wrap="wrap",
        ),
        icon="key",
    )


def _sso_link_card() -> rx.Component:
    """Where single sign-on, verified domains and "require 2FA" live (owners)."""
    return rx.cond(
        SessionState.allowed_actions.contains("sso_manage"),
        card(
            "Security & SSO",
            muted("Single sign-on, verified email domains and two-factor requirements."),
            rx.link("Open Security & SSO", href="/org/" + SessionState.org_slug + "/settings/sso"),
            icon="key-round",
        ),
    )


@rx.page(
    route=routes.org_page_route("settings"),
    title="Settings · Creative Studio",
    on_load=[SessionState.load_org, SecurityState.load, ConnectionsState.load],
)
def settings_page() -> rx.Component:
    return app_shell(
        "settings",
        "Settings",
        "Security for your account; connections and API access for the organization.",
        error_callout(SecurityState.error),
        success_callout(SecurityState.notice),
        rx.heading("Security", size="5", as_="h2", id="security"),
        _two_factor_card(),
        _sessions_card(),
        _password_card(),
        rx.heading("Organization", size="5", as_="h2"),
        _sso_link_card(),
        card(
            "Brand kits",
            muted("Voice, audience and vocabulary for Assistant replies and Studio text runs."),
            rx.link("Open brand kits", href="/org/" + SessionState.org_slug + "/settings/brand"),
            icon="palette",
        ),
        connections_section(),
        _api_links_card(),
    )
