"""Shared page furniture: cards, stats, tables, muted and read-only lines, status badges.

Every page builds from these, so spacing, headings and colours agree across the app.
"""

from __future__ import annotations

import reflex as rx


def card(title, *children, icon: str = "", aside=None, spacing: str = "4", **props) -> rx.Component:
    """A titled card (h2); `aside` sits at the right of the heading and wraps on small screens."""
    heading = rx.hstack(
        rx.icon(icon, size=18, aria_hidden="true") if icon else rx.fragment(),
        rx.heading(title, size="4", as_="h2"),
        align="center",
        spacing="2",
    )
    header = (
        rx.flex(heading, rx.spacer(), aside, width="100%", align="center", wrap="wrap", spacing="2")
        if aside is not None
        else heading
    )
    return rx.card(
        rx.vstack(header, *children, spacing=spacing, width="100%"), width="100%", **props
    )


def stat(label: str, value, hint=None) -> rx.Component:
    """A labelled figure people compare (credits, usage)."""
    return rx.vstack(
        rx.text(label, size="2", color=rx.color("gray", 11)),
        rx.text(value, size="6", weight="bold"),
        rx.text(hint, size="1", color=rx.color("gray", 10)) if hint is not None else rx.fragment(),
        spacing="1",
        min_width="0",
        role="group",
        aria_label=label,
    )


def muted(*children, **props) -> rx.Component:
    return rx.text(*children, size="2", color=rx.color("gray", 11), **props)


def read_only_line(*children) -> rx.Component:
    """Why something cannot be changed here, next to where it would be changed."""
    return rx.hstack(
        rx.icon("lock", size=14, color=rx.color("gray", 10), flex_shrink="0"),
        muted(*children),
        align="center",
        spacing="2",
        role="note",
    )


def table(headers: list[str], body: rx.Component) -> rx.Component:
    """A table that scrolls sideways inside its card instead of widening the page."""
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            rx.table.body(body),
            width="100%",
            variant="ghost",
        ),
        overflow_x="auto",
        width="100%",
    )


# Below the sm breakpoint (768 px) a wide table becomes a list of cards; from sm up, the table.
WIDE_ONLY = rx.breakpoints(initial="none", sm="block")
NARROW_ONLY = rx.breakpoints(initial="flex", sm="none")


def table_or_cards(wide: rx.Component, cards: rx.Component, label: str) -> rx.Component:
    """`wide` (a table) on wide screens, `cards` (one card per row) on a phone: no clipped
    columns at 375 px. The hidden one is out of the accessibility tree (display: none)."""
    return rx.fragment(
        rx.box(wide, display=WIDE_ONLY, width="100%"),
        rx.flex(
            cards,
            direction="column",
            spacing="2",
            display=NARROW_ONLY,
            width="100%",
            role="list",
            aria_label=label,
        ),
    )


def row_card(*children, label) -> rx.Component:
    """One row of a table as a card (phones)."""
    return rx.box(
        rx.vstack(*children, spacing="2", width="100%"),
        padding="0.75rem",
        border=f"1px solid {rx.color('gray', 5)}",
        border_radius="var(--radius-3)",
        width="100%",
        role="listitem",
        aria_label=label,
    )


# Colours of statuses, one table for runs, subscriptions and jobs.
STATUS_COLORS: tuple[tuple[str, str], ...] = (
    ("succeeded", "green"),
    ("active", "green"),
    ("trialing", "green"),
    ("failed", "red"),
    ("running", "blue"),
    ("past_due", "amber"),
    ("queued", "gray"),
)


def status_badge(status, label=None, *, default_color: str = "gray", **props) -> rx.Component:
    """A status chip; a spinner while `status` is "running"."""
    return rx.badge(
        rx.cond(status == "running", rx.spinner(size="1"), rx.fragment()),
        label if label is not None else status,
        color_scheme=rx.match(status, *STATUS_COLORS, default_color),
        variant=props.pop("variant", "soft"),
        size=props.pop("size", "2"),
        **props,
    )
