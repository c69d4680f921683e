"""Settings > Security & SSO (owners): single sign-on, verified domains, required 2FA.
State: state/sso_settings.py."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, field, label_for, success_callout
from creative_studio.components.page import card, muted, table
from creative_studio.layout import app_shell
from state.sso_settings import ROLE_OPTIONS, DomainRow, SsoSettingsState

S = SsoSettingsState


def _messages(section: str) -> rx.Component:
    return rx.cond(
        S.section == section,
        rx.vstack(error_callout(S.error), success_callout(S.notice), width="100%"),
    )


def _help_link() -> rx.Component:
    return rx.link(
        "Security & SSO help",
        href=routes.help_article("security-and-sso"),
        size="2",
    )


def _copy_line(label: str, value, copy_label: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        rx.hstack(
            rx.code(value, size="2", word_break="break_all"),
            rx.icon_button(
                rx.icon("copy", size=14),
                size="1",
                variant="soft",
                aria_label=copy_label,
                title=copy_label,
                on_click=[rx.set_clipboard(value), rx.toast.success("Copied.")],
            ),
            align="center",
            spacing="2",
            wrap="wrap",
        ),
        spacing="1",
        width="100%",
    )


def _status() -> rx.Component:
    return rx.hstack(
        rx.cond(
            S.sso_enabled,
            rx.badge("On", color_scheme="green", variant="soft", size="2"),
            rx.badge("Off", color_scheme="gray", variant="soft", size="2"),
        ),
        rx.cond(S.require_sso, rx.badge("Required", color_scheme="iris", variant="soft")),
        spacing="2",
    )


def _settings_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            field(
                "Issuer URL",
                "issuer",
                "url",
                default_value=S.issuer,
                placeholder="https://example.okta.com",
                max_length=501,
                hint="Your identity provider's OpenID issuer (Okta, Microsoft Entra, Google "
                "Workspace, Keycloak…).",
                required=True,
            ),
            field("Client ID", "client_id", default_value=S.client_id, max_length=256),
            field(
                "Client secret",
                "client_secret",
                "password",
                "new-password",
                max_length=601,
                placeholder=rx.cond(S.secret_saved, "Saved (leave blank to keep)", ""),
                hint="Stored encrypted; never shown again.",
            ),
            rx.vstack(
                label_for("Role of people who join through SSO", "default_role"),
                rx.select.root(
                    rx.select.trigger(id="default_role", min_width="12rem"),
                    rx.select.content(
                        *[rx.select.item(label, value=value) for value, label in ROLE_OPTIONS]
                    ),
                    name="default_role",
                    value=S.default_role,
                    on_change=S.set_default_role,
                ),
                muted("Never owner. New people count against your plan's seats."),
                spacing="1",
            ),
            rx.button("Save settings", type="submit"),
            spacing="3",
            width="100%",
            max_width="36rem",
        ),
        on_submit=S.save_settings,
        reset_on_submit=False,
        width="100%",
    )


def _sso_card() -> rx.Component:
    return card(
        "Single sign-on (OpenID Connect)",
        muted(
            "Register an app at your identity provider with the redirect URI below, then enter "
            "its issuer, client ID and secret. Test before turning it on."
        ),
        _messages("sso"),
        _copy_line("Redirect URI to register", S.redirect_uri, "Copy the redirect URI"),
        _settings_form(),
        rx.divider(),
        rx.heading("Test", size="3", as_="h3"),
        rx.hstack(
            rx.button(
                "Test connection", variant="soft", type="button", on_click=S.check_connection
            ),
            rx.button("Test sign-in", variant="soft", type="button", on_click=S.start_test),
            spacing="2",
            wrap="wrap",
        ),
        rx.cond(S.tested_line != "", rx.text(S.tested_line, size="2", color_scheme="green")),
        rx.cond(
            S.test_problem != "",
            rx.callout(S.test_problem, icon="triangle-alert", color_scheme="amber", width="100%"),
        ),
        rx.divider(),
        rx.heading("Turn on", size="3", as_="h3"),
        rx.cond(
            S.sso_enabled,
            rx.button(
                "Turn single sign-on off",
                color_scheme="red",
                variant="soft",
                type="button",
                on_click=S.set_sso_enabled(False),
            ),
            rx.vstack(
                rx.button(
                    "Turn single sign-on on", type="button", on_click=S.set_sso_enabled(True)
                ),
                rx.cond(S.turn_on_reason != "", muted(S.turn_on_reason)),
                spacing="1",
            ),
        ),
        rx.cond(
            S.sso_enabled,
            rx.vstack(
                rx.hstack(
                    rx.switch(
                        id="require_sso",
                        checked=S.require_sso,
                        on_change=S.set_require_sso,
                    ),
                    label_for("Require SSO for addresses on verified domains", "require_sso"),
                    align="center",
                    spacing="2",
                ),
                muted(
                    "Password sign-in is refused for those addresses. Owners keep it as a way "
                    "back in only with two-factor authentication on."
                ),
                rx.cond(
                    ~S.has_verified_domain,
                    muted(
                        "Verify a domain below first: SSO signs in addresses on verified domains."
                    ),
                ),
                spacing="1",
                width="100%",
            ),
        ),
        icon="key-round",
        aside=_status(),
    )


def _domain_row(row: DomainRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row.domain, weight="medium", size="2")),
        rx.table.cell(
            rx.badge(
                row.status,
                color_scheme=rx.cond(row.verified & ~row.warning, "green", "amber"),
                variant="soft",
            ),
            vertical_align="middle",
        ),
        rx.table.cell(
            rx.vstack(
                rx.text("Name: ", rx.code(row.record_name, size="1"), size="1"),
                rx.text("Value: ", rx.code(row.record_value, size="1"), size="1"),
                rx.cond(row.problem != "", rx.text(row.problem, size="1", color_scheme="red")),
                rx.cond(
                    row.checked != "",
                    rx.text("Last checked ", row.checked, size="1", color=rx.color("gray", 11)),
                ),
                spacing="1",
                max_width="30rem",
            )
        ),
        rx.table.cell(
            rx.hstack(
                rx.button(
                    "Verify now",
                    size="1",
                    variant="soft",
                    aria_label="Verify " + row.domain + " now",
                    on_click=S.verify_domain(row.domain_id),
                ),
                rx.button(
                    "Remove",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    aria_label="Remove " + row.domain,
                    on_click=S.remove_domain(row.domain_id),
                ),
                spacing="2",
            ),
            vertical_align="middle",
        ),
        aria_label=row.domain,
    )


def _domains_card() -> rx.Component:
    return card(
        "Verified domains",
        muted(
            "Addresses on a verified domain sign in through your identity provider, and people "
            "there can join this organization. Prove a domain is yours with a DNS TXT record; "
            "it is checked again every few hours and must stay published."
        ),
        rx.cond(
            S.domains_alert != "",
            rx.callout(
                S.domains_alert,
                icon="triangle_alert",
                color_scheme="amber",
                role="alert",
                width="100%",
            ),
        ),
        _messages("domains"),
        rx.form(
            rx.hstack(
                rx.box(
                    field("Domain", "domain", placeholder="example.com", max_length=254),
                    flex="1",
                    min_width="12rem",
                ),
                rx.button("Add domain", type="submit"),
                align="end",
                spacing="2",
                wrap="wrap",
                width="100%",
            ),
            on_submit=S.add_domain,
            reset_on_submit=True,
            width="100%",
        ),
        rx.cond(
            S.domains.length() > 0,
            table(
                ["Domain", "Status", "DNS TXT record", ""],
                rx.foreach(S.domains, _domain_row),
            ),
            muted("No domains yet. Add the domain of your work email addresses."),
        ),
        icon="globe",
    )


def _two_factor_card() -> rx.Component:
    return card(
        "Require two-factor authentication",
        _messages("2fa"),
        rx.hstack(
            rx.switch(id="require_2fa", checked=S.require_2fa, on_change=S.set_require_2fa),
            label_for("Require 2FA of every member", "require_2fa"),
            align="center",
            spacing="2",
        ),
        muted(
            "Members without it are sent to turn it on (Settings > Security) before they can "
            "act in this organization. You need it on yourself first."
        ),
        muted(S.without_2fa_line),
        icon="shield-check",
    )


@rx.page(
    route=routes.org_subpage_route("settings", "sso"),
    title="Security & SSO · Creative Studio",
    on_load=SsoSettingsState.load,
)
def sso_settings_page() -> rx.Component:
    return app_shell(
        "settings",
        "Security & SSO",
        "Single sign-on, verified domains and two-factor requirements for the organization.",
        rx.hstack(
            rx.link("← Settings", href=S.settings_href, size="2"),
            _help_link(),
            spacing="4",
        ),
        rx.cond(
            (S.error != "") & (S.section == ""),
            error_callout(S.error),
        ),
        rx.cond(
            S.org_address != "",
            rx.vstack(_sso_card(), _domains_card(), _two_factor_card(), spacing="4", width="100%"),
        ),
    )
