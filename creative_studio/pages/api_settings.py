"""Settings > API (/org/<slug>/settings/api): create and revoke API keys, API controls.

View only; everything it shows or does lives in `state/api_settings.py`.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import (
    error_callout,
    field,
    label_for,
    submit_button,
    success_callout,
    token_input,
)
from creative_studio.components.page import card, muted, status_badge, table
from creative_studio.layout import app_shell
from state.api_settings import SCOPE_OPTIONS, ApiSettingsState, KeyRow, ModelOption, ScopeOption

S = ApiSettingsState


def _messages(section: str) -> rx.Component:
    return rx.cond(
        S.section == section,
        rx.vstack(error_callout(S.error), success_callout(S.notice), spacing="2", width="100%"),
    )


def _select(label: str, field_id: str, value, on_change, choices) -> rx.Component:
    return rx.vstack(
        label_for(label, field_id),
        rx.select.root(
            rx.select.trigger(id=field_id, width="100%"),
            rx.select.content(
                rx.foreach(choices, lambda c: rx.select.item(c.label, value=c.value))
            ),
            value=value,
            on_change=on_change,
            size="3",
        ),
        spacing="1",
        flex="1",
        min_width="12rem",
    )


def _scope_checkbox(option: ScopeOption) -> rx.Component:
    return rx.hstack(
        rx.checkbox(
            id=option.field_id,
            checked=S.create_scopes.contains(option.value),
            on_change=lambda checked: S.toggle_scope(option.value, checked),
        ),
        label_for(option.label, option.field_id, weight="regular"),
        align="center",
        spacing="2",
    )


def _new_secret() -> rx.Component:
    return rx.cond(
        S.new_key_secret != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("key-round")),
            rx.vstack(
                rx.text(
                    "Copy this key now: it is shown only once. We keep only a fingerprint of it.",
                    weight="medium",
                    size="2",
                ),
                rx.code(
                    S.new_key_secret, size="3", aria_label="New API key", word_break="break_all"
                ),
                rx.hstack(
                    rx.button(
                        rx.icon("copy", size=14),
                        "Copy key",
                        on_click=rx.set_clipboard(S.new_key_secret),
                        variant="soft",
                    ),
                    rx.button("I saved the key", on_click=S.dismiss_secret, variant="outline"),
                    spacing="2",
                    wrap="wrap",
                ),
                spacing="2",
                width="100%",
            ),
            color_scheme="green",
            role="status",
            width="100%",
        ),
    )


def _create_card() -> rx.Component:
    return card(
        "Create an API key",
        muted(
            "A key acts for you in this organization and can never do more than you may. Send it "
            "as 'Authorization: Bearer <key>' to this app's /v1 API (OpenAI-compatible)."
        ),
        _messages("create"),
        _new_secret(),
        rx.form(
            rx.vstack(
                rx.flex(
                    rx.box(
                        field(
                            "Key name",
                            "name",
                            field_id="key-name",
                            required=True,
                            placeholder="Website chatbot",
                            max_length=121,
                        ),
                        flex="2",
                        min_width="14rem",
                    ),
                    _select(
                        "Project",
                        "key-project",
                        S.create_project,
                        S.set_create_project,
                        S.project_choices,
                    ),
                    _select(
                        "Expires",
                        "key-expiry",
                        S.create_expiry,
                        S.set_create_expiry,
                        S.expiry_choices,
                    ),
                    gap="0.75rem",
                    wrap="wrap",
                    width="100%",
                ),
                rx.text("Scopes", size="2", weight="medium"),
                rx.flex(
                    *[_scope_checkbox(option) for option in SCOPE_OPTIONS],
                    column_gap="1.5rem",
                    row_gap="0.5rem",
                    wrap="wrap",
                ),
                rx.box(
                    field(
                        "Daily credit cap (optional)",
                        "daily_cap",
                        field_id="key-daily-cap",
                        hint="Credits this key may spend per UTC day; empty for no cap.",
                        input_mode="numeric",
                        max_length=12,
                    ),
                    max_width="20rem",
                    width="100%",
                ),
                token_input(S.form_token),
                submit_button(
                    rx.icon("key-round", size=16),
                    "Create key",
                    pending=S.pending == "create",
                    size="3",
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=S.create_key,
            reset_on_submit=False,
            width="100%",
        ),
    )


def _key_row(row: KeyRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(rx.text(row.name, weight="medium"), rx.code(row.prefix), spacing="1")
        ),
        rx.table.cell(rx.text(row.scopes, size="2")),
        rx.table.cell(row.project),
        rx.table.cell(rx.text(row.created, size="2")),
        rx.table.cell(rx.text(row.last_used, size="2")),
        rx.table.cell(
            rx.vstack(rx.text(row.expires, size="2"), muted("Cap: ", row.daily_cap), spacing="1")
        ),
        rx.table.cell(status_badge(row.status, default_color="red")),
        rx.table.cell(
            rx.cond(
                row.status == "revoked",
                muted("—"),
                rx.cond(
                    S.confirm_revoke_id == row.key_id,
                    rx.hstack(
                        rx.button(
                            "Revoke now",
                            color_scheme="red",
                            size="1",
                            on_click=S.revoke_key(row.key_id),
                            aria_label="Confirm revoking " + row.name,
                        ),
                        rx.button("Keep", variant="soft", size="1", on_click=S.cancel_revoke),
                        spacing="2",
                    ),
                    rx.button(
                        "Revoke",
                        variant="soft",
                        color_scheme="red",
                        size="1",
                        on_click=S.ask_revoke(row.key_id),
                        aria_label="Revoke " + row.name,
                    ),
                ),
            )
        ),
    )


def _keys_card() -> rx.Component:
    return card(
        "API keys",
        _messages("keys"),
        rx.cond(
            S.keys.length() > 0,
            table(
                ["Key", "Scopes", "Project", "Created", "Last used", "Expires", "Status", ""],
                rx.foreach(S.keys, _key_row),
            ),
            muted("No API keys yet. Create one above to call the API from your own tools."),
        ),
        rx.link("See every API request in Logs", href=S.logs_href),
        icon="key",
    )


def _model_checkbox(option: ModelOption) -> rx.Component:
    return rx.hstack(
        rx.checkbox(
            id=option.field_id,
            checked=S.allowed_models.contains(option.key),
            on_change=lambda checked: S.toggle_allowed_model(option.key, checked),
        ),
        rx.vstack(
            label_for(option.label, option.field_id, weight="regular"),
            rx.cond(option.note != "", muted(option.note)),
            spacing="0",
        ),
        align="start",
        spacing="2",
        width="100%",
    )


def _controls_card() -> rx.Component:
    return card(
        "API controls",
        _messages("controls"),
        rx.hstack(
            rx.switch(id="api-enabled", checked=S.api_enabled, on_change=S.set_api_enabled),
            label_for("API enabled for this organization", "api-enabled"),
            align="center",
            spacing="2",
        ),
        muted(
            "Allowed models: tick the models keys may use. None ticked means every model your "
            "plan allows. A model your plan does not include stays unavailable either way."
        ),
        rx.vstack(rx.foreach(S.model_options, _model_checkbox), spacing="2", width="100%"),
        rx.button(
            rx.icon("save", size=16),
            "Save API controls",
            on_click=S.save_controls(S.form_token),
            size="3",
        ),
        icon="sliders-horizontal",
    )


def _not_allowed() -> rx.Component:
    return rx.cond(
        (S.error != "") & (S.section == ""),
        card("API keys", error_callout(S.error)),
    )


def _quickstart() -> rx.Component:
    return card(
        "Quickstart",
        muted("Point the official OpenAI SDK, or curl, at this app's /v1 API:"),
        rx.code_block(
            "from openai import OpenAI\n"
            'client = OpenAI(base_url="<this app>/v1", api_key="cs_...")\n'
            'print(client.chat.completions.create(model="local-text",\n'
            '    messages=[{"role": "user", "content": "Spring sale tagline"}]))',
            language="python",
            width="100%",
        ),
        rx.link(
            "Read the API quickstart: register, verify, billing profile, key, first completion "
            "with curl and the openai SDK",
            href=routes.help_article("api-quickstart"),
        ),
        icon="book-open",
    )


@rx.page(
    route=routes.org_subpage_route("settings", "api"),
    title="API · Settings · Creative Studio",
    on_load=ApiSettingsState.load,
)
def api_settings_page() -> rx.Component:
    return app_shell(
        "settings",
        "API",
        "Keys for the OpenAI-compatible /v1 API, and what the API may do in this organization.",
        _not_allowed(),
        rx.cond(
            S.org_address != "",
            rx.vstack(
                _create_card(),
                _keys_card(),
                _controls_card(),
                _quickstart(),
                spacing="5",
                width="100%",
            ),
        ),
    )
