"""Platform operators only: turn a model off, swap it to its backup, put it back in service."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.page import card
from state.session import SessionState
from state.studio import StudioState


def _model_controls(model) -> rx.Component:
    return rx.flex(
        rx.text(model.name, size="2", min_width="12rem"),
        rx.button(
            "Disable",
            size="1",
            variant="soft",
            color_scheme="red",
            on_click=StudioState.operator_disable(model.key),
            aria_label="Disable " + model.name,
        ),
        rx.button(
            "Swap to backup",
            size="1",
            variant="soft",
            on_click=StudioState.operator_swap(model.key),
            aria_label="Swap " + model.name + " to its backup",
        ),
        rx.button(
            "Enable",
            size="1",
            variant="soft",
            color_scheme="green",
            on_click=StudioState.operator_enable(model.key),
            aria_label="Enable " + model.name,
        ),
        gap="2",
        align="center",
        wrap="wrap",
    )


def operator_panel() -> rx.Component:
    return rx.cond(
        SessionState.is_operator,
        card(
            "Operator: model status",
            rx.text(
                "Changes apply to every organization and are written to the audit log.",
                size="1",
                color=rx.color("gray", 11),
            ),
            rx.cond(
                StudioState.operator_notice != "",
                rx.text(StudioState.operator_notice, size="2", role="status"),
            ),
            rx.foreach(StudioState.operator_models, _model_controls),
            spacing="2",
        ),
    )
