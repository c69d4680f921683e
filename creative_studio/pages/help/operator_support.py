"""/operator/support: the support queue, a ticket with its run and ledger, incidents, and
searches that found nothing. State: state/operator_support.py."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, label_for, success_callout
from creative_studio.components.page import card, muted, status_badge, table
from creative_studio.layout import explanation_card, loading, page_header
from state.operator_support import (
    COMPONENTS,
    IMPACTS,
    INCIDENT_STATUSES,
    QUEUE_FILTERS,
    MissRow,
    OperatorSupportState,
    QueueRow,
    ThreadRow,
    TimelineRow,
)
from state.session import SessionState
from state.status import IncidentRow

S = OperatorSupportState
FILTER_LABELS = {
    "active": "Not resolved",
    "new": "New",
    "open": "Open",
    "waiting": "Waiting on customer",
    "resolved": "Resolved",
}


def _select(label: str, field_id: str, options, value, on_change) -> rx.Component:
    return rx.vstack(
        label_for(label, field_id),
        rx.select.root(
            rx.select.trigger(id=field_id, aria_label=label),
            rx.select.content(*[rx.select.item(text, value=key) for key, text in options]),
            value=value,
            on_change=on_change,
        ),
        spacing="1",
    )


def _queue_row(row: QueueRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.button(
                "#",
                row.ticket_id,
                " ",
                row.subject,
                variant="ghost",
                size="2",
                on_click=S.open_ticket(row.ticket_id),
            )
        ),
        rx.table.cell(rx.code(row.org)),
        rx.table.cell(status_badge(row.status, row.status_label, size="1")),
        rx.table.cell(row.priority),
        rx.table.cell(rx.text(row.due, size="1")),
        rx.table.cell(rx.text(row.assignee, size="1")),
    )


def _queue() -> rx.Component:
    return card(
        "Support queue",
        _select(
            "Show",
            "queue-filter",
            [(key, FILTER_LABELS[key]) for key in QUEUE_FILTERS],
            S.status_filter,
            S.filter_status,
        ),
        rx.cond(
            S.queue.length() > 0,
            table(
                ["Ticket", "Organization", "Status", "Priority", "Due", "Assignee"],
                rx.foreach(S.queue, _queue_row),
            ),
            muted("No tickets here."),
        ),
        icon="inbox",
    )


def _thread_row(row: ThreadRow) -> rx.Component:
    return rx.box(
        rx.text(rx.text.strong(row.author), " · ", row.at, size="1", color=rx.color("gray", 10)),
        rx.text(row.body, size="2", white_space="pre-wrap"),
        padding="0.75rem",
        border_radius="var(--radius-3)",
        background=rx.match(
            row.kind,
            ("note", rx.color("amber", 3)),
            ("support", rx.color("accent", 3)),
            rx.color("gray", 3),
        ),
        width="100%",
    )


def _line(row: TimelineRow) -> rx.Component:
    return rx.table.row(rx.table.cell(row.label), rx.table.cell(row.value), rx.table.cell(row.at))


def _step(row: TimelineRow) -> rx.Component:
    return rx.table.row(rx.table.cell(row.label), rx.table.cell(row.at))


def _ticket() -> rx.Component:
    return rx.cond(
        S.ticket_id > 0,
        rx.grid(
            card(
                S.ticket_subject,
                rx.foreach(
                    S.details,
                    lambda d: rx.text(rx.text.strong(d.label, ": "), d.value, size="2"),
                ),
                rx.flex(
                    _select(
                        "Status",
                        "ticket-status",
                        [(k, FILTER_LABELS[k]) for k in ("new", "open", "waiting", "resolved")],
                        S.ticket_status,
                        S.set_ticket_status,
                    ),
                    _select(
                        "Priority",
                        "ticket-priority",
                        [(p, p.capitalize()) for p in ("low", "normal", "high", "urgent")],
                        S.ticket_priority,
                        S.set_ticket_priority,
                    ),
                    rx.button("Assign to me", variant="soft", on_click=S.assign_to_me),
                    gap="0.75rem",
                    wrap="wrap",
                    align="end",
                ),
                rx.vstack(rx.foreach(S.thread, _thread_row), spacing="2", width="100%"),
                rx.form(
                    rx.vstack(
                        label_for("Reply to the customer (mailed)", "operator-reply"),
                        rx.text_area(
                            id="operator-reply",
                            name="body",
                            rows="4",
                            max_length=5001,
                            width="100%",
                        ),
                        rx.button("Send reply", type="submit"),
                        spacing="2",
                        width="100%",
                    ),
                    on_submit=S.reply,
                    width="100%",
                ),
                rx.form(
                    rx.vstack(
                        label_for("Internal note (never shown to the customer)", "operator-note"),
                        rx.text_area(
                            id="operator-note", name="note", rows="2", max_length=5001, width="100%"
                        ),
                        rx.button("Add note", type="submit", variant="soft", color_scheme="amber"),
                        spacing="2",
                        width="100%",
                    ),
                    on_submit=S.add_note,
                    width="100%",
                ),
                icon="ticket",
            ),
            card(
                "The run",
                rx.cond(
                    S.run_status != "",
                    rx.vstack(
                        rx.text("Status: ", rx.text.strong(S.run_status), size="2"),
                        rx.cond(
                            S.run_failure != "",
                            rx.text(S.run_failure, size="2", color=rx.color("red", 11)),
                        ),
                        rx.heading("Timeline", size="3", as_="h3"),
                        table(["Status", "At (UTC)"], rx.foreach(S.timeline, _step)),
                        rx.heading("Ledger entries", size="3", as_="h3"),
                        rx.cond(
                            S.ledger.length() > 0,
                            table(["Kind", "Credits", "At (UTC)"], rx.foreach(S.ledger, _line)),
                            muted("No credits were held or charged for this run."),
                        ),
                        spacing="2",
                        width="100%",
                    ),
                    muted("This ticket names no run."),
                ),
                icon="activity",
            ),
            columns=rx.breakpoints(initial="1", lg="2"),
            spacing="4",
            width="100%",
        ),
    )


def _incident(row: IncidentRow) -> rx.Component:
    return rx.box(
        rx.text(
            rx.text.strong("#", row.incident_id, " ", row.title),
            " · ",
            row.status_label,
            " · ",
            row.components,
            size="2",
        ),
        rx.cond(
            row.status != "resolved",
            rx.form(
                rx.flex(
                    rx.el.input(type="hidden", name="incident_id", value=row.incident_id),
                    rx.el.select(
                        *[rx.el.option(s.capitalize(), value=s) for s in INCIDENT_STATUSES],
                        name="status",
                        aria_label="New status",
                    ),
                    rx.input(
                        name="body",
                        placeholder="What changed",
                        aria_label="Update",
                        max_length=2001,
                    ),
                    rx.button("Post update", type="submit", size="1"),
                    gap="0.5rem",
                    wrap="wrap",
                    align="center",
                ),
                on_submit=S.update_incident,
            ),
        ),
        padding_y="0.5rem",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
        width="100%",
    )


def _incidents() -> rx.Component:
    return card(
        "Incidents",
        rx.form(
            rx.vstack(
                label_for("Title", "incident-title"),
                rx.input(id="incident-title", name="title", max_length=201, width="100%"),
                rx.flex(
                    *[
                        rx.el.label(
                            rx.el.input(type="checkbox", name=f"component-{key}"),
                            " ",
                            name,
                            style={"marginRight": "1rem"},
                        )
                        for key, name in COMPONENTS
                    ],
                    wrap="wrap",
                    role="group",
                    aria_label="Affected components",
                ),
                rx.el.label(
                    "Impact ",
                    rx.el.select(*[rx.el.option(i, value=i) for i in IMPACTS], name="impact"),
                ),
                label_for("First update", "incident-body"),
                rx.input(id="incident-body", name="body", max_length=2001, width="100%"),
                rx.button("Open incident", type="submit", color_scheme="amber"),
                spacing="2",
                width="100%",
            ),
            on_submit=S.open_incident,
            width="100%",
        ),
        rx.foreach(S.incidents, _incident),
        icon="siren",
    )


def _misses() -> rx.Component:
    def row(miss: MissRow) -> rx.Component:
        return rx.table.row(
            rx.table.cell(miss.query), rx.table.cell(miss.count), rx.table.cell(miss.last)
        )

    return card(
        "Help searches with no result",
        rx.cond(
            S.misses.length() > 0,
            table(["Search", "Times", "Last (UTC)"], rx.foreach(S.misses, row)),
            muted("Every search found something so far."),
        ),
        icon="search-x",
    )


@rx.page(
    route=routes.OPERATOR_SUPPORT,
    title="Support queue · Creative Studio",
    on_load=[SessionState.require_signed_in, OperatorSupportState.load],
)
def operator_support_page() -> rx.Component:
    return rx.box(
        rx.vstack(
            rx.link("← Operator console", href=routes.OPERATOR_HOME, size="2"),
            page_header("Support", "Tickets, incidents and what people could not find (UTC)."),
            rx.cond(
                SessionState.ready,
                rx.cond(
                    S.allowed,
                    rx.vstack(
                        error_callout(S.error),
                        success_callout(S.notice),
                        _queue(),
                        _ticket(),
                        _incidents(),
                        _misses(),
                        spacing="4",
                        width="100%",
                    ),
                    explanation_card("For platform operators", S.denied_message),
                ),
                loading(),
            ),
            spacing="4",
            max_width="80rem",
            width="100%",
        ),
        padding=["1rem", "1.5rem", "2rem"],
        role="main",
    )
