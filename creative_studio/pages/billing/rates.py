"""Credit rates: what each model costs by modality, and each tool's standard run."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.page import card, table
from state.billing import BillingState


def _rate_table(rows, unit_header: str) -> rx.Component:
    return table(
        ["Model", unit_header, "Minimum plan"],
        rx.foreach(
            rows,
            lambda r: rx.table.row(
                rx.table.cell(r.name),
                rx.table.cell(r.rate),
                rx.table.cell(r.min_plan),
            ),
        ),
    )


def _tool_table() -> rx.Component:
    return table(
        ["Tool", "Default model", "Credits per standard run"],
        rx.foreach(
            BillingState.tool_rates,
            lambda t: rx.table.row(
                rx.table.cell(t.name),
                rx.table.cell(t.model),
                rx.table.cell(t.credits),
            ),
        ),
    )


def _tab(content: rx.Component, value: str) -> rx.Component:
    return rx.tabs.content(content, value=value, padding_top="0.75rem")


def rates_card() -> rx.Component:
    return card(
        "Credit rates",
        rx.tabs.root(
            rx.tabs.list(
                rx.tabs.trigger("Text", value="text"),
                rx.tabs.trigger("Image", value="image"),
                rx.tabs.trigger("Video", value="video"),
                rx.tabs.trigger("Tools", value="tools"),
            ),
            _tab(_rate_table(BillingState.text_rates, "Credits per 1K tokens"), "text"),
            _tab(_rate_table(BillingState.image_rates, "Credits per image"), "image"),
            _tab(_rate_table(BillingState.video_rates, "Credits per second"), "video"),
            _tab(_tool_table(), "tools"),
            default_value="text",
            width="100%",
        ),
        icon="tags",
        spacing="3",
    )
