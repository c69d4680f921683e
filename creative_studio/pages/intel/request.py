"""The request form (with its estimate, daily allowance and blockers) and the report history."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import error_callout, label_for
from creative_studio.components.limit_notice import limit_notice
from creative_studio.components.page import card, muted, read_only_line, status_badge
from state.intel import FOCUS_OPTIONS, BlockerView, Choice, IntelState, ReportRow


def small(*children, **props) -> rx.Component:
    return rx.text(*children, size="1", color=rx.color("gray", 11), **props)


def _blocker(blocker: BlockerView) -> rx.Component:
    return rx.callout.root(
        rx.callout.icon(rx.icon("triangle-alert")),
        rx.vstack(
            rx.callout.text(blocker.message),
            rx.cond(
                blocker.link_href != "",
                rx.link(blocker.link_label, href=blocker.link_href, size="2"),
            ),
            spacing="1",
        ),
        color_scheme="amber",
        role="status",
        width="100%",
    )


def _text_area(label: str, name: str, field_id: str, hint: str, rows: str, max_length: int):
    return rx.vstack(
        label_for(label, field_id),
        rx.text_area(
            id=field_id,
            name=name,
            rows=rows,
            max_length=max_length,
            width="100%",
            aria_describedby=f"{field_id}-hint",
        ),
        small(hint, id=f"{field_id}-hint"),
        spacing="1",
        width="100%",
    )


def _form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.el.input(type="hidden", name="request_token", value=IntelState.request_token),
            rx.vstack(
                label_for("Competitor", "intel-competitor"),
                rx.input(
                    id="intel-competitor",
                    name="competitor",
                    max_length=121,
                    placeholder="Rival Inc",
                    width="100%",
                    size="3",
                    required=True,
                ),
                spacing="1",
                width="100%",
            ),
            _text_area(
                "Pages to read",
                "urls",
                "intel-urls",
                "One address per line, up to 5: home, pricing, about…",
                "3",
                12_000,
            ),
            _text_area(
                "Pasted material (optional)",
                "pasted",
                "intel-pasted",
                "Ad copy or social posts of theirs, up to 20,000 characters.",
                "2",
                20_001,
            ),
            rx.flex(
                rx.vstack(
                    label_for("Focus", "intel-focus"),
                    rx.el.select(
                        *[rx.el.option(label, value=value) for value, label in FOCUS_OPTIONS],
                        id="intel-focus",
                        name="focus",
                        value=IntelState.focus,
                        on_change=IntelState.set_focus,
                        style={"padding": "0.4rem", "minWidth": "12rem"},
                    ),
                    spacing="1",
                ),
                rx.vstack(
                    label_for("Project (its brand kit is “us”)", "intel-project"),
                    rx.el.select(
                        rx.foreach(
                            IntelState.projects,
                            lambda c: rx.el.option(c.label, value=c.value),
                        ),
                        id="intel-project",
                        name="project",
                        value=IntelState.project_id,
                        on_change=IntelState.set_project,
                        style={"padding": "0.4rem", "minWidth": "12rem"},
                    ),
                    spacing="1",
                ),
                gap="4",
                wrap="wrap",
            ),
            muted(IntelState.estimate_line),
            muted(IntelState.cap_line),
            rx.foreach(IntelState.blockers, _blocker),
            error_callout(IntelState.error),
            limit_notice(IntelState.limit_notice, IntelState.billing_href),
            rx.cond(
                IntelState.can_run,
                rx.button("Request report", type="submit", size="3"),
                read_only_line(
                    "Viewers read reports; owners, admins and editors of this project request them."
                ),
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=IntelState.request_report,
        reset_on_submit=False,
        width="100%",
    )


def request_card() -> rx.Component:
    return card("Request a report", _form(), icon="radar")


def _history_row(row: ReportRow) -> rx.Component:
    return rx.fragment(
        rx.cond(
            row.group_first,
            rx.heading(row.competitor, as_="h3", size="3", margin_top="0.25rem"),
        ),
        _history_line(row),
    )


def _history_line(row: ReportRow) -> rx.Component:
    return rx.hstack(
        status_badge(row.status),
        rx.vstack(
            rx.text(row.created, weight="medium", size="2"),
            small(row.project),
            rx.cond(row.changes != "", small(row.changes)),
            spacing="0",
            min_width="0",
        ),
        rx.spacer(),
        rx.button(
            "Open",
            size="1",
            variant=rx.cond(IntelState.selected == row.public_id, "solid", "soft"),
            aria_label="Open the report on " + row.competitor + " of " + row.created,
            on_click=IntelState.select(row.public_id),
        ),
        width="100%",
        align="center",
        spacing="3",
        wrap="wrap",
    )


def history_card() -> rx.Component:
    return card(
        "History",
        rx.cond(
            IntelState.reports.length() > 0,
            rx.vstack(rx.foreach(IntelState.history, _history_row), spacing="3", width="100%"),
            muted(
                "No reports yet. Name a competitor and the pages to read above; each report "
                "cites the pages it comes from, and the next one on the same competitor shows "
                "what changed."
            ),
        ),
        icon="history",
    )


__all__ = ["Choice", "history_card", "request_card"]
