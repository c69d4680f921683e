"""Settings > Connections: the org's OAuth links to social and ad platforms (view).

`connections_section()` is placed on the Settings page; `ConnectionsState.load` is in its
on_load (state/connections.py).
"""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import error_callout, success_callout
from creative_studio.components.page import muted
from state.connections import SECTION_ID, ConnectionCard, ConnectionsState, ProviderOption


def _red_dot(label: str) -> rx.Component:
    return rx.box(
        width="0.625rem",
        height="0.625rem",
        min_width="0.625rem",
        border_radius="9999px",
        background=rx.color("red", 9),
        role="img",
        aria_label=label,
        title=label,
    )


def _connection_row(card: ConnectionCard) -> rx.Component:
    return rx.box(
        rx.flex(
            rx.vstack(
                rx.hstack(
                    rx.cond(card.expired, _red_dot("Needs reconnecting")),
                    rx.text(card.provider_name, weight="bold", size="3"),
                    rx.cond(
                        card.expired,
                        rx.badge(card.status_label, color_scheme="red"),
                        rx.badge(card.status_label, color_scheme="green"),
                    ),
                    align="center",
                    spacing="2",
                    wrap="wrap",
                ),
                rx.text(card.account_label, size="2"),
                rx.text("Scopes: ", card.scopes_text, size="1", color=rx.color("gray", 11)),
                rx.text(
                    card.detail,
                    size="1",
                    color=rx.cond(card.expired, rx.color("red", 11), rx.color("gray", 11)),
                ),
                spacing="1",
                min_width="0",
                flex="1",
            ),
            rx.cond(
                ConnectionsState.can_manage,
                rx.hstack(
                    rx.cond(
                        card.expired,
                        rx.button(
                            rx.icon("refresh-cw", size=16, aria_hidden="true"),
                            "Reconnect",
                            on_click=ConnectionsState.reconnect(card.id),
                            color_scheme="red",
                        ),
                    ),
                    rx.button(
                        "Disconnect",
                        variant="soft",
                        color_scheme="gray",
                        on_click=ConnectionsState.disconnect(card.id),
                        aria_label="Disconnect " + card.provider_name,
                    ),
                    spacing="2",
                ),
            ),
            direction=rx.breakpoints(initial="column", sm="row"),
            spacing="3",
            align=rx.breakpoints(initial="start", sm="center"),
            width="100%",
        ),
        padding="0.75rem",
        border=f"1px solid {rx.color('gray', 5)}",
        border_radius="var(--radius-3)",
        width="100%",
    )


def _provider_row(option: ProviderOption) -> rx.Component:
    return rx.flex(
        rx.vstack(
            rx.text(option.name, weight="medium", size="2"),
            rx.cond(
                option.configured,
                rx.text("Asks for: ", option.scopes_text, size="1", color=rx.color("gray", 11)),
                rx.cond(
                    option.env_vars.length() > 0,
                    rx.text(
                        "Not set up on this server (operators: set ",
                        rx.foreach(
                            option.env_vars,
                            lambda name, index: rx.fragment(
                                rx.cond(index > 0, " and ", ""), rx.code(name, size="1")
                            ),
                        ),
                        " and restart the app).",
                        size="1",
                        color=rx.color("gray", 11),
                    ),
                    rx.text(
                        "Not available yet — contact support.",
                        size="1",
                        color=rx.color("gray", 11),
                    ),
                ),
            ),
            spacing="1",
            min_width="0",
            flex="1",
        ),
        rx.cond(
            option.configured & ConnectionsState.can_manage,
            rx.button(
                rx.cond(option.connected, "Connect another", "Connect"),
                on_click=ConnectionsState.connect(option.key),
                variant="soft",
                aria_label=rx.cond(option.connected, "Connect another ", "Connect ") + option.name,
            ),
        ),
        direction=rx.breakpoints(initial="column", sm="row"),
        spacing="2",
        align=rx.breakpoints(initial="start", sm="center"),
        width="100%",
    )


def connections_section() -> rx.Component:
    """The Connections card of Settings."""
    return rx.card(
        rx.vstack(
            rx.heading("Connections", size="4", as_="h3"),
            muted(
                "Link LinkedIn, Meta, Google Ads and X to publish and read results. Tokens are "
                "stored encrypted and renewed automatically every hour."
            ),
            error_callout(ConnectionsState.error),
            success_callout(ConnectionsState.notice),
            rx.cond(
                ConnectionsState.connections.length() > 0,
                rx.vstack(
                    rx.foreach(ConnectionsState.connections, _connection_row),
                    spacing="2",
                    width="100%",
                ),
                rx.cond(
                    ConnectionsState.loaded,
                    muted("No platform is connected yet."),
                ),
            ),
            rx.divider(),
            rx.text("Add a connection", weight="medium", size="2"),
            rx.cond(
                ~ConnectionsState.can_manage & ConnectionsState.loaded,
                rx.text(
                    "Owners and admins connect platforms. Ask one of them to add a connection.",
                    size="1",
                    color=rx.color("gray", 11),
                ),
            ),
            rx.vstack(
                rx.foreach(ConnectionsState.providers, _provider_row), spacing="3", width="100%"
            ),
            spacing="3",
            width="100%",
        ),
        id=SECTION_ID,
        width="100%",
    )
