"""History: every run with its status changes, ID, output, cost, a retry for a failed one and
"Run again" for any; a page at a time with filters, full-size previews and copy for text."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import label_for
from creative_studio.components.page import muted, status_badge
from state.session import SessionState
from state.studio import HISTORY_STATUSES, HistoryItem, StudioState


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
            rx.cond(
                item.modality == "video",
                rx.el.video(
                    src=item.preview_url,
                    controls=True,
                    preload="metadata",
                    aria_label="Generated clip for: " + item.prompt,
                    style={"max_width": "100%", "width": "32rem", "border_radius": "8px"},
                ),
                rx.link(
                    rx.image(
                        src=item.preview_url,
                        alt="Generated image for: " + item.prompt,
                        max_width="22rem",
                        width="100%",
                        border_radius="var(--radius-3)",
                        loading="lazy",
                    ),
                    href=item.preview_url,
                    is_external=True,
                    aria_label="Open the image of " + item.public_id + " at full size",
                ),
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
            item.preview_url != "",
            rx.link(
                rx.hstack(
                    rx.icon("maximize-2", size=14, aria_hidden="true"),
                    "Full size",
                    spacing="1",
                    align="center",
                ),
                href=item.preview_url,
                is_external=True,
                size="2",
            ),
        ),
        rx.cond(
            item.output_text != "",
            rx.button(
                rx.icon("copy", size=14),
                "Copy text",
                size="1",
                variant="soft",
                type="button",
                on_click=[
                    rx.set_clipboard(item.output_text),
                    rx.toast.success("Copied the text of " + item.public_id + "."),
                ],
                aria_label="Copy the text of " + item.public_id,
            ),
        ),
        rx.cond(
            item.status == "failed",
            rx.link(
                rx.hstack(
                    rx.icon("life-buoy", size=14, aria_hidden="true"),
                    "Report this",
                    spacing="1",
                    align="center",
                ),
                # Opens Contact support with this run's ID; the form fills in the rest.
                href=routes.support_new(SessionState.org_slug) + "?generation_id=" + item.public_id,
                size="2",
                aria_label="Report " + item.public_id + " to support",
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
            rx.cond(
                item.can_run_again,
                rx.button(
                    rx.icon("repeat", size=14),
                    "Run again",
                    size="1",
                    variant="soft",
                    on_click=StudioState.run_again(item.public_id),
                    aria_label="Run " + item.public_id + " again",
                ),
            ),
        ),
        spacing="3",
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
                    rx.text(
                        "· ",
                        item.project_name,
                        " · ",
                        item.person,
                        size="2",
                        color=rx.color("gray", 11),
                    ),
                    align="center",
                    spacing="2",
                    wrap="wrap",
                ),
                rx.spacer(),
                rx.text("ID ", rx.code(item.public_id), size="1", color=rx.color("gray", 11)),
                width="100%",
                wrap="wrap",
                spacing="2",
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


def _select(label: str, field_id: str, name: str, value, options) -> rx.Component:
    """A native select for the filter form ("" = any), labelled."""
    return rx.vstack(
        label_for(label, field_id, size="1"),
        rx.el.select(
            rx.el.option("Any", value=""),
            options,
            id=field_id,
            name=name,
            default_value=value,
            class_name="cs-native-select",
            # A long model name must not widen the page on a phone.
            style={"width": "100%", "max_width": "100%", "min_height": "2rem"},
        ),
        spacing="1",
        min_width="0",
        flex="1 1 8rem",
    )


def _filters() -> rx.Component:
    return rx.form(
        rx.flex(
            _select(
                "Project",
                "history-project",
                "project",
                StudioState.filter_project,
                rx.foreach(StudioState.projects, lambda p: rx.el.option(p.name, value=p.id)),
            ),
            _select(
                "Person",
                "history-person",
                "person",
                StudioState.filter_person,
                rx.foreach(
                    StudioState.person_choices, lambda c: rx.el.option(c.label, value=c.value)
                ),
            ),
            _select(
                "Status",
                "history-status",
                "status",
                StudioState.filter_status,
                rx.fragment(*[rx.el.option(s.capitalize(), value=s) for s in HISTORY_STATUSES]),
            ),
            _select(
                "Model",
                "history-model",
                "model",
                StudioState.filter_model,
                rx.fragment(
                    rx.foreach(
                        StudioState.text_models, lambda m: rx.el.option(m.name, value=m.key)
                    ),
                    rx.foreach(
                        StudioState.image_models, lambda m: rx.el.option(m.name, value=m.key)
                    ),
                    rx.foreach(
                        StudioState.video_models, lambda m: rx.el.option(m.name, value=m.key)
                    ),
                ),
            ),
            rx.vstack(
                label_for("Search text", "history-text", size="1"),
                rx.input(
                    id="history-text",
                    name="text",
                    default_value=StudioState.filter_text,
                    max_length=200,
                    placeholder="e.g. launch",
                    width="100%",
                ),
                spacing="1",
                min_width="10rem",
                flex="2",
            ),
            rx.hstack(
                rx.button("Filter", type="submit", size="2", variant="soft"),
                rx.button(
                    "Clear",
                    type="button",
                    size="2",
                    variant="ghost",
                    color_scheme="gray",
                    on_click=StudioState.clear_history_filters,
                ),
                spacing="2",
                align="end",
            ),
            spacing="3",
            wrap="wrap",
            align="end",
            width="100%",
        ),
        on_submit=StudioState.filter_history,
        reset_on_submit=False,
        width="100%",
        aria_label="Filter history",
    )


def _pager() -> rx.Component:
    return rx.flex(
        rx.text(StudioState.history_page_label, size="2", color=rx.color("gray", 11)),
        rx.spacer(),
        rx.button(
            rx.icon("chevron-left", size=14),
            "Newer",
            size="2",
            variant="soft",
            disabled=StudioState.history_page == 0,
            on_click=StudioState.history_newer,
        ),
        rx.button(
            "Older",
            rx.icon("chevron-right", size=14),
            size="2",
            variant="soft",
            disabled=~StudioState.history_has_more,
            on_click=StudioState.history_older,
        ),
        spacing="2",
        align="center",
        width="100%",
    )


def history() -> rx.Component:
    return rx.vstack(
        rx.heading("History", size="4", as_="h2"),
        _filters(),
        rx.cond(
            StudioState.history.length() > 0,
            rx.vstack(
                rx.foreach(StudioState.history, _history_card),
                _pager(),
                spacing="3",
                width="100%",
            ),
            rx.card(
                rx.cond(
                    (StudioState.filter_project != "")
                    | (StudioState.filter_person != "")
                    | (StudioState.filter_status != "")
                    | (StudioState.filter_model != "")
                    | (StudioState.filter_text != ""),
                    muted("No runs match these filters. Clear them to see every run."),
                    muted(
                        "No runs yet. Pick a model, write a prompt and press Run: every run, its "
                        "status changes and its output appear here."
                    ),
                ),
                width="100%",
            ),
        ),
        spacing="3",
        width="100%",
        role="region",
        aria_label="History",
    )
