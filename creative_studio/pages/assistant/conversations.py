"""The conversation list: search, new conversation (project and Studio's model picker: a
locked model opens the upgrade offer), archived switch."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.model_picker import model_group
from creative_studio.components.page import card, muted
from state.assistant import AssistantState, ConversationRow


def _item(row: ConversationRow) -> rx.Component:
    return rx.button(
        rx.vstack(
            rx.text(row.title, weight="medium", size="2", trim="both", text_align="left"),
            rx.text(row.where, size="1", color=rx.color("gray", 11)),
            spacing="1",
            align="start",
            width="100%",
        ),
        on_click=AssistantState.open_conversation(row.public_id),
        variant=rx.cond(row.active, "soft", "ghost"),
        aria_current=rx.cond(row.active, "page", "false"),
        width="100%",
        height="auto",
        padding="2",
        justify="start",
    )


def _search() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.el.label(
                "Search conversations",
                html_for="assistant-search",
                class_name="rt-Text rt-r-size-2",
            ),
            rx.hstack(
                rx.input(
                    id="assistant-search",
                    name="query",
                    value=AssistantState.query,
                    on_change=AssistantState.set_query,
                    placeholder="Words in titles or messages",
                    width="100%",
                ),
                rx.button("Search", type="submit", variant="soft"),
                width="100%",
            ),
            rx.cond(
                AssistantState.searched != "",
                rx.hstack(
                    muted("Results for “", AssistantState.searched, "”"),
                    rx.button(
                        "Clear search",
                        variant="ghost",
                        size="1",
                        type="button",
                        on_click=AssistantState.clear_search,
                    ),
                    align="center",
                ),
            ),
            spacing="1",
            width="100%",
        ),
        on_submit=AssistantState.search,
        width="100%",
    )


def _new_conversation() -> rx.Component:
    return rx.cond(
        AssistantState.can_start,
        rx.vstack(
            rx.el.label("Project", html_for="assistant-project", class_name="rt-Text rt-r-size-2"),
            rx.el.select(
                rx.foreach(
                    AssistantState.project_choices,
                    lambda c: rx.el.option(c.label, value=c.value),
                ),
                id="assistant-project",
                value=AssistantState.new_project,
                on_change=AssistantState.set_new_project,
                class_name="rt-reset rt-SelectTrigger rt-r-size-2 rt-variant-surface",
                style={"width": "100%"},
            ),
            model_group(
                "Model",
                AssistantState.text_models,
                AssistantState.new_model,
                AssistantState.pick_model,
            ),
            rx.button(
                rx.icon("plus", size=16),
                "New conversation",
                on_click=AssistantState.new_conversation,
                width="100%",
            ),
            spacing="2",
            width="100%",
        ),
    )


def conversations_panel() -> rx.Component:
    return rx.box(
        card(
            "Conversations",
            _new_conversation(),
            _search(),
            rx.hstack(
                rx.switch(
                    id="assistant-archived",
                    checked=AssistantState.show_archived,
                    on_change=AssistantState.toggle_archived,
                ),
                rx.el.label(
                    "Show archived", html_for="assistant-archived", class_name="rt-Text rt-r-size-2"
                ),
                align="center",
            ),
            rx.cond(
                AssistantState.conversations.length() > 0,
                rx.vstack(
                    rx.foreach(AssistantState.conversations, _item),
                    spacing="1",
                    width="100%",
                    role="list",
                    aria_label="Conversations",
                ),
                muted(
                    rx.cond(
                        AssistantState.searched != "",
                        "No conversation matches this search.",
                        "No conversations yet. Start one to ask for campaign ideas or copy.",
                    )
                ),
            ),
            icon="messages-square",
        ),
        width=rx.breakpoints(initial="100%", md="20rem"),
        flex_shrink="0",
    )
