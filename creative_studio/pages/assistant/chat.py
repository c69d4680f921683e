"""The open conversation: messages (Markdown, never live HTML), composer, Stop and Continue."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.limit_notice import limit_notice
from creative_studio.components.page import card, muted, read_only_line
from state.assistant import AssistantState, MessageRow


def _message(row: MessageRow) -> rx.Component:
    mine = row.role == "user"
    return rx.box(
        rx.vstack(
            rx.hstack(
                rx.text(rx.cond(mine, "You", "Marketing Assistant"), weight="bold", size="2"),
                rx.cond(
                    row.status_label != "",
                    rx.badge(
                        rx.cond(row.status == "streaming", rx.spinner(size="1"), rx.fragment()),
                        row.status_label,
                        color_scheme=rx.match(
                            row.status, ("failed", "red"), ("interrupted", "amber"), "gray"
                        ),
                        variant="soft",
                    ),
                ),
                align="center",
                spacing="2",
            ),
            # Raw HTML off, as in the help center: model output is shown, never run.
            rx.box(
                rx.markdown(row.markdown, use_raw=False),
                width="100%",
                class_name="assistant-message-text",
            ),
            rx.cond(row.failure != "", rx.text(row.failure, color=rx.color("red", 11), size="2")),
            rx.cond(
                row.flagged != "",
                rx.callout(row.flagged, icon="triangle-alert", color_scheme="amber", size="1"),
            ),
            rx.cond(
                (row.kit_line != "") | (row.studio_href != ""),
                rx.hstack(
                    rx.cond(row.kit_line != "", muted(row.kit_line)),
                    rx.cond(
                        (row.studio_href != "")
                        & (row.status != "streaming")
                        & AssistantState.can_send,
                        rx.link("Use in Studio", href=row.studio_href, size="2"),
                    ),
                    spacing="3",
                    wrap="wrap",
                    align="center",
                ),
            ),
            spacing="2",
            align="start",
            width="100%",
        ),
        background=rx.cond(mine, rx.color("accent", 3), rx.color("gray", 2)),
        border_radius="var(--radius-3)",
        padding="3",
        width="100%",
        data_role=row.role,
        data_status=row.status,
    )


def _composer() -> rx.Component:
    return rx.cond(
        AssistantState.can_send,
        rx.form(
            rx.vstack(
                rx.el.input(type="hidden", name="form_token", value=AssistantState.form_token),
                rx.el.label(
                    "Message", html_for="assistant-message", class_name="rt-Text rt-r-size-2"
                ),
                rx.text_area(
                    id="assistant-message",
                    name="message",
                    placeholder="Ask for campaign ideas, a launch post, subject lines…",
                    rows="3",
                    width="100%",
                    max_length=4001,
                ),
                rx.hstack(
                    rx.cond(
                        AssistantState.replying,
                        rx.button(
                            rx.icon("square", size=14),
                            "Stop",
                            type="button",
                            color_scheme="red",
                            variant="soft",
                            on_click=AssistantState.stop,
                        ),
                        rx.button(rx.icon("send", size=14), "Send", type="submit"),
                    ),
                    rx.cond(
                        AssistantState.interrupted_id != 0,
                        rx.button(
                            "Continue",
                            type="button",
                            variant="soft",
                            on_click=AssistantState.continue_reply,
                        ),
                    ),
                    muted(AssistantState.cap_line),
                    align="center",
                    wrap="wrap",
                    spacing="3",
                ),
                spacing="2",
                width="100%",
            ),
            on_submit=AssistantState.send,
            reset_on_submit=True,
            width="100%",
        ),
        rx.vstack(
            read_only_line(AssistantState.send_reason),
            muted(AssistantState.cap_line),
            spacing="1",
        ),
    )


def _header() -> rx.Component:
    return rx.vstack(
        rx.cond(
            AssistantState.renaming,
            rx.form(
                rx.hstack(
                    rx.el.label(
                        "Title", html_for="assistant-title", class_name="rt-Text rt-r-size-2"
                    ),
                    rx.input(
                        id="assistant-title",
                        name="title",
                        default_value=AssistantState.active_title,
                    ),
                    rx.button("Save title", type="submit", size="1"),
                    rx.button(
                        "Cancel",
                        type="button",
                        size="1",
                        variant="ghost",
                        on_click=AssistantState.cancel_rename,
                    ),
                    align="center",
                    wrap="wrap",
                ),
                on_submit=AssistantState.rename,
            ),
            rx.heading(AssistantState.active_title, size="4", as_="h2"),
        ),
        muted(
            AssistantState.active_where,
            " · Model: ",
            AssistantState.active_model,
            " · Brand kit: ",
            AssistantState.active_kit,
        ),
        rx.cond(
            AssistantState.can_send | AssistantState.active_archived,
            rx.hstack(
                rx.button("Rename", size="1", variant="soft", on_click=AssistantState.start_rename),
                rx.cond(
                    AssistantState.active_archived,
                    rx.button(
                        "Restore", size="1", variant="soft", on_click=AssistantState.archive(False)
                    ),
                    rx.button(
                        "Archive", size="1", variant="soft", on_click=AssistantState.archive(True)
                    ),
                ),
                rx.button(
                    "Export as Markdown", size="1", variant="soft", on_click=AssistantState.export
                ),
                wrap="wrap",
            ),
            rx.button(
                "Export as Markdown", size="1", variant="soft", on_click=AssistantState.export
            ),
        ),
        spacing="2",
        width="100%",
    )


def chat_panel() -> rx.Component:
    return rx.vstack(
        rx.cond(
            AssistantState.error != "",
            rx.callout(
                AssistantState.error,
                icon="circle-alert",
                color_scheme="red",
                role="alert",
                width="100%",
            ),
        ),
        rx.cond(
            AssistantState.notice != "",
            rx.callout(
                AssistantState.notice,
                icon="check",
                color_scheme="green",
                role="status",
                width="100%",
            ),
        ),
        limit_notice(AssistantState.limit_notice, AssistantState.billing_href),
        rx.cond(
            AssistantState.active_id != "",
            rx.card(
                rx.vstack(
                    _header(),
                    rx.vstack(
                        rx.foreach(AssistantState.messages, _message),
                        spacing="3",
                        width="100%",
                        aria_live="polite",
                        aria_label="Conversation messages",
                    ),
                    _composer(),
                    muted(
                        "Assistant messages are included in your plan and cost no credits. "
                        "Replies are drafts: check facts before you publish."
                    ),
                    spacing="4",
                    width="100%",
                ),
                width="100%",
            ),
            card(
                "Start a conversation",
                muted(
                    "The Marketing Assistant drafts posts, campaign ideas and copy in your brand "
                    "kit's voice. Start a new conversation, or open one from the list."
                ),
                rx.cond(
                    AssistantState.send_reason != "", read_only_line(AssistantState.send_reason)
                ),
                muted(AssistantState.cap_line),
                muted("Assistant messages are included in your plan and cost no credits."),
                icon="sparkles",
            ),
        ),
        flex="1",
        min_width="0",
        width="100%",
        spacing="3",
    )
