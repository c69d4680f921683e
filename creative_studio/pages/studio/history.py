"""History: every run with its status changes, ID, output, cost, and a retry for a failed one."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.page import muted, status_badge
from state.studio import HistoryItem, StudioState


def _output(item: HistoryItem) -> rx.Component:
    return rx.fragment(
        rx.cond(
            item.output_text != "",
            rx.box(
                rx.text(item.output_text, size="2", white_space="pre-wrap"),
                padding="0.75rem",
                border_radius="var(--radius-3)",
                background=rx.color("gray", 2),
                border=f"1px solid {rx.color('gray', 4)}",
                width="100%",
            ),
        ),
        rx.cond(
            item.preview_url != "",
            rx.image(
                src=item.preview_url,
                alt=rx.cond(
                    item.modality == "video",
                    "Generated clip for: " + item.prompt,
                    "Generated image for: " + item.prompt,
                ),
                max_width="22rem",
                width="100%",
                border_radius="var(--radius-3)",
                loading="lazy",
            ),
        ),
    )


def _footer(item: HistoryItem) -> rx.Component:
    return rx.flex(
        rx.text(item.credits_label, size="1", color=rx.color("gray", 11)),
        rx.cond(item.note != "", rx.text(item.note, size="1", color=rx.color("gray", 11))),
        rx.spacer(),
        rx.cond(
            item.download_url != "",
            rx.link(
                rx.hstack(
                    rx.icon("download", size=14, aria_hidden="true"),
                    "Download",
                    spacing="1",
                    align="center",
                ),
                href=item.download_url,
                size="2",
                is_external=False,
            ),
        ),
        rx.cond(
            item.can_retry,
            rx.button(
                rx.icon("rotate-ccw", size=14),
                "Retry",
                size="1",
                variant="soft",
                on_click=StudioState.retry(item.public_id),
                aria_label="Retry " + item.public_id,
            ),
        ),
        gap="3",
        align="center",
        wrap="wrap",
        width="100%",
    )


def _history_card(item: HistoryItem) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.flex(
                rx.hstack(
                    status_badge(item.status),
                    rx.text(item.model_name, weight="medium", size="2"),
                    rx.text("· ", item.project_name, size="2", color=rx.color("gray", 11)),
                    align="center",
                    spacing="2",
                    wrap="wrap",
                ),
                rx.spacer(),
                rx.text("ID ", rx.code(item.public_id), size="1", color=rx.color("gray", 11)),
                width="100%",
                wrap="wrap",
                gap="2",
            ),
            rx.text(item.prompt, size="2", trim="both"),
            rx.text(item.transitions, size="1", color=rx.color("gray", 11)),
            rx.cond(
                item.failure_reason != "",
                rx.text(item.failure_reason, size="2", color=rx.color("red", 11)),
            ),
            _output(item),
            _footer(item),
            spacing="2",
            width="100%",
        ),
        width="100%",
        custom_attrs={"data-generation": item.public_id},
    )


def history() -> rx.Component:
    return rx.vstack(
        rx.heading("History", size="4", as_="h2"),
        rx.cond(
            StudioState.history.length() > 0,
            rx.vstack(rx.foreach(StudioState.history, _history_card), spacing="3", width="100%"),
            rx.card(
                muted(
                    "No runs yet. Pick a model, write a prompt and press Run: every run, its "
                    "status changes and its output appear here."
                ),
                width="100%",
            ),
        ),
        spacing="3",
        width="100%",
        role="region",
        aria_label="History",
    )
