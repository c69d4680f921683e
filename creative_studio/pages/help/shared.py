"""Pieces the help pages share: the public frame, the search box, the result list."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.page import muted
from state.help import HelpState, HitRow, SnippetPart
from state.session import SessionState


def public_frame(*children: rx.Component) -> rx.Component:
    """Signed-out pages with a header: Creative Studio, Help center, Status, Sign in."""
    return rx.box(
        rx.flex(
            rx.link(
                rx.hstack(
                    rx.icon("sparkles", size=20, color=rx.color("accent", 10)),
                    rx.text("Creative Studio", size="4", weight="bold"),
                    align="center",
                    spacing="2",
                ),
                href=routes.INDEX,
                underline="none",
                color=rx.color("gray", 12),
            ),
            rx.spacer(),
            rx.hstack(
                rx.link("Help center", href=routes.HELP, size="2"),
                rx.link("Status", href=routes.STATUS, size="2"),
                rx.cond(
                    SessionState.signed_in,
                    rx.link("My workspace", href=routes.INDEX, size="2"),
                    rx.link("Sign in", href=routes.SIGN_IN, size="2"),
                ),
                rx.color_mode.button(size="1", variant="ghost", aria_label="Toggle dark mode"),
                spacing="4",
                align="center",
            ),
            align="center",
            wrap="wrap",
            gap="0.75rem",
            padding="0.75rem 1.25rem",
            border_bottom=f"1px solid {rx.color('gray', 5)}",
            width="100%",
        ),
        rx.box(
            rx.vstack(*children, spacing="5", width="100%"),
            max_width="60rem",
            margin_x="auto",
            padding=["1rem", "1.5rem", "2rem"],
            width="100%",
        ),
        role="main",
        min_height="100vh",
    )


def search_box() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.el.label(
                rx.text("Search the help center", size="2", weight="medium"),
                html_for="help-search",
            ),
            rx.hstack(
                rx.input(
                    id="help-search",
                    name="q",
                    value=HelpState.query,
                    on_change=HelpState.set_query.debounce(300),
                    placeholder="For example: billing required, rate limited, refund",
                    type="search",
                    max_length=200,
                    size="3",
                    width="100%",
                ),
                rx.button(rx.icon("search", size=16), "Search", type="submit", size="3"),
                width="100%",
            ),
            spacing="1",
            width="100%",
        ),
        on_submit=HelpState.search,
        width="100%",
    )


def tag_filters() -> rx.Component:
    return rx.flex(
        rx.foreach(
            HelpState.tags,
            lambda tag: rx.button(
                tag,
                size="1",
                variant=rx.cond(HelpState.tag == tag, "solid", "soft"),
                on_click=HelpState.choose_tag(tag),
                aria_pressed=rx.cond(HelpState.tag == tag, "true", "false"),
            ),
        ),
        gap="0.5rem",
        wrap="wrap",
        role="group",
        aria_label="Filter by tag",
    )


def snippet(parts) -> rx.Component:
    return rx.text(
        rx.foreach(
            parts,
            lambda part: rx.cond(
                part.highlighted,
                rx.el.mark(part.text),
                rx.text.span(part.text),
            ),
        ),
        size="2",
        color=rx.color("gray", 11),
    )


def hit_card(hit: HitRow) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.badge(hit.kind, variant="soft"),
                rx.link(rx.heading(hit.title, size="3", as_="h3"), href=hit.href),
                align="center",
                spacing="2",
                wrap="wrap",
            ),
            snippet(hit.snippet),
            spacing="2",
        ),
        width="100%",
    )


def results() -> rx.Component:
    return rx.vstack(
        rx.text(HelpState.found, size="2", weight="medium", role="status"),
        rx.cond(
            HelpState.hits.length() > 0,
            rx.vstack(rx.foreach(HelpState.hits, hit_card), spacing="3", width="100%"),
            muted(
                "Nothing matches “",
                HelpState.searched,
                "”. Try fewer or other words, or contact support from your organization's "
                "Help page: we read every search that finds nothing.",
            ),
        ),
        spacing="3",
        width="100%",
    )


def suggestion_links(items) -> rx.Component:
    return rx.foreach(
        items,
        lambda hit: rx.hstack(
            rx.icon("book-open", size=14),
            rx.link(hit.title, href=hit.href, size="2", is_external=True),
            spacing="2",
            align="center",
        ),
    )


__all__ = ["SnippetPart", "hit_card", "public_frame", "results", "search_box", "tag_filters"]
