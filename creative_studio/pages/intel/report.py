"""The selected report: progress, what changed, sections with their sources, pricing tiers,
recommended actions ("Create in Studio"), the sources themselves, and exports.

Everything is plain text (rx.text): fetched pages and model output never render as HTML."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.page import card, status_badge, table
from state.intel import ActionRow, ChangeRow, Cite, ClaimRow, IntelState, SourceRow, TierRow


def small(*children, **props) -> rx.Component:
    return rx.text(*children, size="1", color=rx.color("gray", 11), **props)


def _cite(cite: Cite) -> rx.Component:
    return rx.link(
        cite.key,
        href=cite.href,
        is_external=~cite.href.startswith("#"),
        size="1",
        weight="bold",
        aria_label="Source " + cite.key,
        rel="noopener noreferrer nofollow",
    )


def _cites(cites) -> rx.Component:
    return rx.hstack(
        rx.foreach(cites, _cite), spacing="1", display="inline-flex", margin_left="0.4rem"
    )


def _claim(row: ClaimRow) -> rx.Component:
    return rx.fragment(
        rx.cond(row.first, rx.heading(row.section, as_="h3", size="3", margin_top="0.5rem")),
        rx.box(rx.text(row.text, as_="span", size="2"), _cites(row.cites), width="100%"),
    )


def _tier(row: TierRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(row.name),
        rx.table.cell(row.price),
        rx.table.cell(row.features),
        rx.table.cell(_cites(row.cites)),
    )


def _action(row: ActionRow) -> rx.Component:
    return rx.flex(
        rx.box(
            rx.text(row.text, as_="span", size="2"), _cites(row.cites), flex="1", min_width="12rem"
        ),
        rx.link(
            rx.button("Create in Studio", size="1", variant="soft"),
            href=row.href,
            aria_label="Create in Studio: " + row.text,
        ),
        gap="2",
        align="center",
        wrap="wrap",
        width="100%",
    )


def _source(row: SourceRow) -> rx.Component:
    return rx.box(
        rx.hstack(
            rx.badge(row.key, variant="outline"),
            status_badge(row.outcome),
            rx.cond(
                row.href != "",
                rx.link(
                    row.where,
                    href=row.href,
                    is_external=True,
                    size="2",
                    rel="noopener noreferrer nofollow",
                    word_break="break-all",
                ),
                rx.text(row.where, size="2"),
            ),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        rx.cond(row.detail != "", small(row.detail)),
        rx.cond(row.message != "", rx.text(row.message, size="1", color=rx.color("amber", 11))),
        rx.cond(row.excerpt != "", small("“", row.excerpt, "”")),
        id=row.anchor,
        width="100%",
        padding_y="0.25rem",
    )


def _change(row: ChangeRow) -> rx.Component:
    return rx.hstack(
        rx.badge(
            row.kind,
            color_scheme=rx.match(row.kind, ("added", "green"), ("removed", "red"), "amber"),
        ),
        rx.text(row.text, size="2"),
        spacing="2",
        align="start",
    )


def _body() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            status_badge(IntelState.d_status),
            rx.text(IntelState.d_stage, size="2"),
            spacing="2",
            align="center",
            wrap="wrap",
            role="status",
            aria_label="Report progress",
        ),
        small(IntelState.d_meta),
        rx.cond(
            IntelState.d_failure != "",
            rx.callout(
                IntelState.d_failure, icon="triangle-alert", color_scheme="red", width="100%"
            ),
        ),
        rx.cond(
            IntelState.d_changes_intro != "",
            rx.box(
                rx.heading(IntelState.d_changes_intro, as_="h3", size="3"),
                rx.vstack(
                    rx.foreach(IntelState.d_changes, _change), spacing="1", margin_top="0.4rem"
                ),
                padding="0.75rem",
                border=f"1px solid {rx.color('accent', 6)}",
                border_radius="var(--radius-3)",
                width="100%",
                role="region",
                aria_label="What changed",
            ),
        ),
        rx.cond(
            IntelState.d_headline != "",
            rx.box(
                small("Their headline"),
                rx.text(IntelState.d_headline, size="4", weight="bold"),
            ),
        ),
        rx.vstack(rx.foreach(IntelState.d_claims, _claim), spacing="1", width="100%"),
        rx.cond(
            IntelState.d_tiers.length() > 0,
            rx.vstack(
                rx.heading("Pricing tiers", as_="h3", size="3"),
                table(
                    ["Tier", "Price", "Includes", "Sources"], rx.foreach(IntelState.d_tiers, _tier)
                ),
                width="100%",
            ),
        ),
        rx.cond(
            IntelState.d_actions.length() > 0,
            rx.vstack(
                rx.heading("Recommended actions", as_="h3", size="3"),
                rx.foreach(IntelState.d_actions, _action),
                spacing="2",
                width="100%",
            ),
        ),
        rx.heading("Sources", as_="h3", size="3"),
        rx.vstack(rx.foreach(IntelState.d_sources, _source), spacing="1", width="100%"),
        rx.cond(
            IntelState.d_status == "succeeded",
            rx.hstack(
                rx.button(
                    "Export Markdown", size="2", variant="soft", on_click=IntelState.download("md")
                ),
                rx.button(
                    "Export CSV", size="2", variant="soft", on_click=IntelState.download("csv")
                ),
                spacing="2",
                wrap="wrap",
            ),
        ),
        spacing="3",
        width="100%",
    )


def report_card() -> rx.Component:
    return rx.cond(
        IntelState.selected != "",
        card("Report: " + IntelState.d_competitor, _body(), icon="file-text"),
    )
