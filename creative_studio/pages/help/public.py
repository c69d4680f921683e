"""/help and /help/<slug>: the public help center. State: state/help.py."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.page import card, muted, table
from creative_studio.layout import page_header
from creative_studio.pages.help.shared import public_frame, results, search_box, tag_filters
from state.help import HelpArticleState, HelpState, RateLine, ToolLine


@rx.page(route=routes.HELP, title="Help center · Creative Studio", on_load=HelpState.load_index)
def help_index_page() -> rx.Component:
    return public_frame(
        page_header(
            "Help center",
            "Guides, runbooks for every error code, billing policy and FAQs.",
            rx.link(rx.button("Platform status", variant="soft"), href=routes.STATUS),
        ),
        search_box(),
        tag_filters(),
        results(),
    )


def _rate_table(rows) -> rx.Component:
    def row(line: RateLine) -> rx.Component:
        return rx.table.row(
            rx.table.cell(line.model),
            rx.table.cell(line.rate),
            rx.table.cell(line.plan),
            rx.table.cell(line.status),
        )

    return table(["Model", "Rate", "Plan", "Status"], rx.foreach(rows, row))


def _rates() -> rx.Component:
    return rx.tabs.root(
        rx.tabs.list(
            rx.tabs.trigger("Text", value="text"),
            rx.tabs.trigger("Image", value="image"),
            rx.tabs.trigger("Video", value="video"),
        ),
        rx.tabs.content(_rate_table(HelpArticleState.text_rates), value="text"),
        rx.tabs.content(_rate_table(HelpArticleState.image_rates), value="image"),
        rx.tabs.content(_rate_table(HelpArticleState.video_rates), value="video"),
        default_value="text",
        width="100%",
    )


def _tools() -> rx.Component:
    def row(line: ToolLine) -> rx.Component:
        return rx.table.row(
            rx.table.cell(rx.text(line.tool, weight="medium")),
            rx.table.cell(line.modality),
            rx.table.cell(line.model),
            rx.table.cell(line.credits),
            rx.table.cell(rx.text(line.description, size="1")),
        )

    return table(
        ["Tool", "Modality", "Default model", "Credits per standard run", "What it makes"],
        rx.foreach(HelpArticleState.tools, row),
    )


def _article() -> rx.Component:
    return rx.vstack(
        rx.link("← Help center", href=routes.HELP, size="2"),
        rx.hstack(
            rx.badge(HelpArticleState.kind, variant="soft"),
            rx.foreach(HelpArticleState.tags, lambda t: rx.badge(t, variant="outline")),
            spacing="2",
            wrap="wrap",
        ),
        rx.heading(HelpArticleState.title, size="7", as_="h1"),
        muted(HelpArticleState.summary),
        rx.cond(
            HelpArticleState.error_codes.length() > 0,
            rx.hstack(
                rx.text("Error codes:", size="2"),
                rx.foreach(HelpArticleState.error_codes, lambda c: rx.code(c)),
                wrap="wrap",
                spacing="2",
            ),
        ),
        card(
            "Article",
            # Raw HTML off: an article's text is shown, never run.
            rx.box(rx.markdown(HelpArticleState.body, use_raw=False), width="100%"),
            rx.cond(HelpArticleState.widget == "model_rates", _rates()),
            rx.cond(HelpArticleState.widget == "tools_overview", _tools()),
            muted("Updated ", HelpArticleState.updated),
        ),
        muted(HelpArticleState.support_hint),
        spacing="4",
        width="100%",
    )


@rx.page(
    route=routes.HELP_ARTICLE_ROUTE,
    title="Help · Creative Studio",
    on_load=HelpArticleState.load,
)
def help_article_page() -> rx.Component:
    return public_frame(
        rx.cond(
            HelpArticleState.not_found,
            card(
                "Article not found",
                muted("There is no help article at this address. Search the help center instead."),
                rx.link("Go to the help center", href=routes.HELP),
            ),
            _article(),
        )
    )
