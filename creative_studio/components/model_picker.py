"""The model picker: every model, grouped by modality, with its rate and its state.

Rows are real buttons (Tab to reach, Enter/Space to choose). A locked row shows a lock and
the plan it needs, and opens the upgrade modal instead of selecting. Disabled and
not-configured rows say why in text; choosing one repeats the reason instead of selecting.
"""

from __future__ import annotations

import reflex as rx

from state.model_choice import ModelOption


def _state_badge(model: ModelOption) -> rx.Component:
    return rx.match(
        model.state,
        ("locked", rx.badge(rx.icon("lock", size=12), model.state_label, color_scheme="amber")),
        ("disabled", rx.badge(model.state_label, color_scheme="red", variant="soft")),
        ("not_configured", rx.badge(model.state_label, color_scheme="gray", variant="soft")),
        rx.cond(
            model.tier == "premium",
            rx.badge("Premium", color_scheme="violet", variant="soft"),
            rx.fragment(),
        ),
    )


def _row(model: ModelOption, selected_key, on_pick) -> rx.Component:
    selected = model.key == selected_key
    usable = model.state == "available"
    return rx.el.button(
        rx.hstack(
            rx.cond(
                model.state == "locked",
                rx.icon(
                    "lock",
                    size=18,
                    color=rx.color("amber", 10),
                    aria_hidden="true",
                    flex_shrink="0",
                ),
                rx.cond(
                    selected,
                    rx.icon(
                        "circle-check", size=18, color=rx.color("accent", 10), aria_hidden="true"
                    ),
                    rx.icon(
                        "circle",
                        size=18,
                        color=rx.color("gray", 8),
                        aria_hidden="true",
                        flex_shrink="0",
                    ),
                ),
            ),
            rx.vstack(
                rx.hstack(
                    rx.text(model.name, size="2", weight="medium"),
                    _state_badge(model),
                    spacing="2",
                    align="center",
                    wrap="wrap",
                ),
                rx.text(model.rate_label, size="1", color=rx.color("gray", 11)),
                rx.cond(
                    model.note != "",
                    rx.text(model.note, size="1", color=rx.color("gray", 11)),
                ),
                spacing="1",
                align="start",
                min_width="0",
            ),
            spacing="3",
            align="start",
            width="100%",
        ),
        type="button",
        on_click=on_pick(model.key),
        aria_pressed=rx.cond(selected, "true", "false"),
        aria_haspopup=rx.cond(model.state == "locked", "dialog", "false"),
        custom_attrs={"data-model-key": model.key, "data-state": model.state},
        style={
            "width": "100%",
            "text_align": "left",
            "padding": "0.6rem 0.75rem",
            "border_radius": "var(--radius-3)",
            "border": rx.cond(
                selected,
                f"2px solid {rx.color('accent', 9)}",
                f"1px solid {rx.color('gray', 5)}",
            ),
            "background": rx.cond(
                selected,
                rx.color("accent", 3),
                rx.cond(usable, rx.color("gray", 1), rx.color("gray", 2)),
            ),
            "opacity": rx.cond(
                (model.state == "disabled") | (model.state == "not_configured"), "0.8", "1"
            ),
            "cursor": "pointer",
            "color": "inherit",
            "font": "inherit",
            "_hover": {"background": rx.color("accent", 2)},
            "_focus_visible": {
                "outline": f"2px solid {rx.color('accent', 8)}",
                "outline_offset": "2px",
            },
        },
    )


def model_group(title: str, models, selected_key, on_pick) -> rx.Component:
    group_id = f"models-{title.lower()}"
    return rx.vstack(
        rx.heading(title, size="2", as_="h3", id=group_id, color=rx.color("gray", 11)),
        rx.vstack(
            rx.foreach(models, lambda model: _row(model, selected_key, on_pick)),
            spacing="2",
            width="100%",
            role="group",
            aria_labelledby=group_id,
        ),
        spacing="2",
        width="100%",
    )


def model_picker(groups: list[tuple[str, object]], selected_key, on_pick) -> rx.Component:
    """`groups`: (title, list var of ModelOption) per modality; `on_pick(key)` an event."""
    return rx.vstack(
        *[model_group(title, models, selected_key, on_pick) for title, models in groups],
        spacing="4",
        width="100%",
        role="region",
        aria_label="Models",
    )
