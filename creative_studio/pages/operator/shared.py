"""Furniture of the operator console's pages: the frame, its navigation, messages."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.layout import explanation_card, loading, page_header
from state.operator import ANALYTICS_PATH, SUPPORT_PATH
from state.session import SessionState


def operator_nav() -> rx.Component:
    return rx.flex(
        rx.link("Operator home", href=routes.OPERATOR_HOME, size="2"),
        rx.link("Support queue", href=SUPPORT_PATH, size="2"),
        rx.link("Platform analytics", href=ANALYTICS_PATH, size="2"),
        rx.link("Background jobs", href=routes.OPERATOR_JOBS, size="2"),
        rx.link("My workspace", href=routes.INDEX, size="2"),
        spacing="4",
        wrap="wrap",
        role="navigation",
        aria_label="Operator console",
    )


def messages(state) -> rx.Component:
    return rx.fragment(
        rx.cond(
            state.error != "",
            rx.callout(state.error, icon="triangle-alert", color_scheme="red", role="alert"),
        ),
        rx.cond(
            state.notice != "",
            rx.callout(state.notice, icon="check", color_scheme="green", role="status"),
        ),
    )


def reason_field(field_id: str, label: str, placeholder: str = "") -> rx.Component:
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium"), html_for=field_id),
        rx.text_area(
            id=field_id,
            name="reason",
            placeholder=placeholder,
            required=True,
            min_length=3,
            max_length=500,
            width="100%",
        ),
        spacing="1",
        width="100%",
    )


def operator_frame(state, title: str, description: str, *content: rx.Component) -> rx.Component:
    return rx.box(
        rx.vstack(
            operator_nav(),
            page_header(title, description),
            rx.cond(
                SessionState.ready,
                rx.cond(
                    state.allowed,
                    rx.vstack(messages(state), *content, spacing="4", width="100%"),
                    explanation_card("For platform operators", state.denied_message),
                ),
                loading(),
            ),
            spacing="4",
            max_width="72rem",
            width="100%",
        ),
        padding=["1rem", "1.5rem", "2rem"],
        role="main",
    )
