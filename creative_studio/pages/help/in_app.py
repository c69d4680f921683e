"""/org/<slug>/help and its pages: Contact support, My tickets, Notifications.
State: state/support.py (and state/help.py for the search)."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, label_for, success_callout
from creative_studio.components.page import card, muted, status_badge, table
from creative_studio.layout import app_shell
from creative_studio.pages.help.shared import (
    results,
    search_box,
    suggestion_links,
    tag_filters,
)
from state.help import HelpState
from state.session import SessionState
from state.support import MessageRow, PrefRow, SupportState, TicketRow

TICKET_COLORS = (("new", "blue"), ("open", "amber"), ("waiting", "gray"), ("resolved", "green"))


def _messages() -> rx.Component:
    return rx.vstack(
        error_callout(SupportState.error),
        success_callout(SupportState.notice),
        spacing="2",
        width="100%",
    )


def _nav() -> rx.Component:
    return rx.hstack(
        rx.link(
            rx.button(rx.icon("life-buoy", size=16), "Contact support"),
            href=SupportState.support_href,
        ),
        rx.link(rx.button("My tickets", variant="soft"), href=SupportState.tickets_href),
        rx.link(rx.button("Notifications", variant="soft"), href=SupportState.notifications_href),
        rx.link(rx.button("Platform status", variant="soft"), href=routes.STATUS),
        spacing="2",
        wrap="wrap",
    )


@rx.page(
    route=routes.org_page_route("help"),
    title="Help · Creative Studio",
    on_load=[SessionState.load_org, SupportState.load, HelpState.load_index],
)
def org_help_page() -> rx.Component:
    return app_shell(
        "help",
        "Help",
        "Articles, runbooks, platform status and support.",
        _nav(),
        rx.callout(
            rx.text(SupportState.status_headline, " ", rx.link("See details", href=routes.STATUS)),
            icon="activity",
            color_scheme=rx.cond(SupportState.status_level == "operational", "green", "amber"),
            width="100%",
        ),
        search_box(),
        tag_filters(),
        results(),
    )


def _field(label: str, name: str, value, hint: str = "", **props) -> rx.Component:
    field_id = f"support-{name}"
    return rx.vstack(
        label_for(label, field_id),
        rx.input(id=field_id, name=name, default_value=value, width="100%", max_length=65, **props),
        rx.text(hint, size="1", color=rx.color("gray", 10)) if hint else rx.fragment(),
        spacing="1",
        width="100%",
    )


def _support_form() -> rx.Component:
    return card(
        "Contact support",
        muted(
            "Filled in from where you were. Check the details, say what happened, and send: "
            "you get a copy by mail and replies under My tickets."
        ),
        rx.form(
            rx.vstack(
                rx.vstack(
                    label_for("Subject", "support-subject"),
                    rx.input(
                        id="support-subject",
                        name="subject",
                        value=SupportState.subject,
                        on_change=SupportState.set_subject.debounce(400),
                        max_length=201,
                        width="100%",
                        size="3",
                    ),
                    spacing="1",
                    width="100%",
                ),
                rx.cond(
                    SupportState.suggestions.length() > 0,
                    rx.box(
                        rx.text("These articles may answer it:", size="2", weight="medium"),
                        suggestion_links(SupportState.suggestions),
                        role="region",
                        aria_label="Suggested articles",
                    ),
                ),
                rx.vstack(
                    label_for("What happened", "support-body"),
                    rx.text_area(
                        id="support-body",
                        name="body",
                        rows="5",
                        max_length=5001,
                        width="100%",
                        placeholder="What you did, what you expected, what you saw.",
                    ),
                    spacing="1",
                    width="100%",
                ),
                rx.grid(
                    _field("Generation ID", "generation_id", SupportState.generation_id),
                    _field("Error code", "error_code", SupportState.reported_code),
                    _field("Request ID", "request_id", SupportState.request_id),
                    _field("Time (UTC)", "time", SupportState.time_utc, hint="YYYY-MM-DD HH:MM"),
                    _field("Model", "model", SupportState.model),
                    _field("Tool", "tool", SupportState.tool),
                    columns=rx.breakpoints(initial="1", sm="2"),
                    spacing="3",
                    width="100%",
                ),
                rx.text(
                    "Organization: ",
                    rx.text.strong(SessionState.org_name),
                    rx.cond(
                        SupportState.project_name != "",
                        rx.text.span(" · Project: ", SupportState.project_name),
                    ),
                    size="2",
                ),
                _messages(),
                rx.hstack(
                    rx.button("Send to support", type="submit", size="3"),
                    rx.link("My tickets", href=SupportState.tickets_href),
                    align="center",
                    spacing="4",
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=SupportState.submit_ticket,
            width="100%",
        ),
    )


@rx.page(
    route=routes.org_subpage_route("help", "support"),
    title="Contact support · Creative Studio",
    on_load=[SessionState.load_org, SupportState.load_support],
)
def support_page() -> rx.Component:
    return app_shell(
        "help",
        "Contact support",
        "A ticket with everything support needs to answer on the first reply.",
        _support_form(),
    )


def _ticket_row(row: TicketRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text("#", row.ticket_id)),
        rx.table.cell(
            rx.button(
                row.subject,
                variant="ghost",
                size="2",
                on_click=SupportState.open_ticket(row.ticket_id),
                aria_label="Open ticket " + row.subject,
            )
        ),
        rx.table.cell(status_badge(row.status, row.status_label, size="1")),
        rx.table.cell(rx.code(row.generation_id)),
        rx.table.cell(row.created),
    )


def _message(row: MessageRow) -> rx.Component:
    return rx.box(
        rx.text(rx.text.strong(row.author), " · ", row.at, size="1", color=rx.color("gray", 10)),
        rx.text(row.body, size="2", white_space="pre-wrap"),
        padding="0.75rem",
        border_radius="var(--radius-3)",
        background=rx.cond(row.kind == "support", rx.color("accent", 3), rx.color("gray", 3)),
        width="100%",
    )


def _thread() -> rx.Component:
    return rx.cond(
        SupportState.open_ticket_id > 0,
        card(
            SupportState.open_ticket_subject,
            rx.text("Status: ", SupportState.open_ticket_status, size="2"),
            rx.vstack(rx.foreach(SupportState.messages, _message), spacing="2", width="100%"),
            rx.form(
                rx.vstack(
                    label_for("Your reply", "reply-body"),
                    rx.text_area(
                        id="reply-body", name="body", rows="3", max_length=5001, width="100%"
                    ),
                    rx.button("Send reply", type="submit"),
                    spacing="2",
                    width="100%",
                ),
                on_submit=SupportState.reply,
                width="100%",
            ),
            icon="messages-square",
        ),
    )


@rx.page(
    route=routes.org_subpage_route("help", "tickets"),
    title="My tickets · Creative Studio",
    on_load=[SessionState.load_org, SupportState.load],
)
def tickets_page() -> rx.Component:
    return app_shell(
        "help",
        "My tickets",
        "Your support requests in this organization and the replies to them.",
        _messages(),
        card(
            "Tickets",
            rx.cond(
                SupportState.tickets.length() > 0,
                table(
                    ["#", "Subject", "Status", "Generation", "Sent (UTC)"],
                    rx.foreach(SupportState.tickets, _ticket_row),
                ),
                muted(
                    "No tickets yet. Contact support when something goes wrong: we answer here and by mail."
                ),
            ),
            aside=rx.link(rx.button("Contact support", size="2"), href=SupportState.support_href),
        ),
        _thread(),
    )


def _pref(row: PrefRow) -> rx.Component:
    field_id = "pref-" + row.kind
    return rx.hstack(
        rx.switch(
            id=field_id,
            checked=row.enabled,
            on_change=lambda on: SupportState.set_pref(row.kind, on),
        ),
        rx.vstack(
            label_for(row.label, field_id),
            muted(row.description),
            spacing="0",
        ),
        align="start",
        spacing="3",
    )


@rx.page(
    route=routes.org_subpage_route("help", "notifications"),
    title="Notifications · Creative Studio",
    on_load=[SessionState.load_org, SupportState.load],
)
def notifications_page() -> rx.Component:
    return app_shell(
        "help",
        "Notifications",
        "Which mail you receive. These choices are yours and apply in every organization.",
        _messages(),
        card("Mail me about", rx.foreach(SupportState.prefs, _pref), spacing="3"),
        card(
            "Always sent",
            rx.foreach(SupportState.always_on, lambda line: muted(line)),
            muted("These protect your account and the organization's payments."),
            icon="lock",
            spacing="2",
        ),
    )
