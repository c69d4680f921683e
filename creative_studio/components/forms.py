"""Form pieces with visible, associated labels and an error line per field."""

from __future__ import annotations

import reflex as rx


def field(
    label: str,
    name: str,
    type_: str = "text",
    autocomplete: str = "off",
    hint: str = "",
    field_id: str | None = None,
    **props,
) -> rx.Component:
    """A labelled input; `field_id` when the same name appears in several forms on a page."""
    field_id = field_id or name
    return rx.vstack(
        label_for(label, field_id),
        rx.input(
            id=field_id,
            name=name,
            type=type_,
            auto_complete=autocomplete,
            width="100%",
            size="3",
            **props,
        ),
        rx.text(hint, size="1", color=rx.color("gray", 10)) if hint else rx.fragment(),
        spacing="1",
        width="100%",
    )


def label_for(text, field_id: str, size: str = "2", weight: str = "medium") -> rx.Component:
    """A real <label for=...> so the input is named by its label (screen readers, tests)."""
    return rx.el.label(rx.text(text, size=size, weight=weight), html_for=field_id)


def error_callout(message) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle-alert", color_scheme="red", role="alert", width="100%"),
    )


def success_callout(message) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="circle-check", color_scheme="green", role="status", width="100%"),
    )
