"""/operator/customers/<slug>: one customer for operators. State: state/operator.py."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.page import card, muted, stat, status_badge, table
from creative_studio.pages.operator.shared import operator_frame, reason_field
from state.operator import (
    CUSTOMER_ROUTE,
    AuditLine,
    ConnectionRow,
    LedgerRow,
    MemberRow,
    OperatorCustomerState,
    PendingRow,
    RunRow,
    TicketRow,
)
from state.session import SessionState

S = OperatorCustomerState


def _summary() -> rx.Component:
    return card(
        S.name,
        rx.grid(
            stat("Plan", S.plan),
            stat("Subscription", S.subscription),
            stat("Balance (credits)", S.balance),
            stat("In project pools", S.pooled),
            columns=rx.breakpoints(initial="2", md="4"),
            spacing="4",
            width="100%",
        ),
        rx.flex(
            rx.text("Slug ", rx.code(S.slug), size="2"),
            rx.cond(
                S.stripe_customer_id != "",
                rx.text("Stripe ", rx.code(S.stripe_customer_id), size="2"),
            ),
            rx.link("Audit log", href=S.audit_href, size="2"),
            rx.link("Billing (as the customer sees it)", href=S.billing_href, size="2"),
            spacing="4",
            wrap="wrap",
        ),
        icon="building-2",
    )


def _run_buttons(run: RunRow) -> rx.Component:
    return rx.flex(
        rx.cond(
            run.refund_label != "",
            rx.button(
                "Refund",
                size="1",
                on_click=S.open_run_action(run.public_id, "refund"),
                aria_label="Refund " + run.public_id,
            ),
            rx.cond(run.refunded, rx.badge("refunded", color_scheme="green", variant="soft")),
        ),
        rx.cond(
            run.can_requeue,
            rx.button(
                "Requeue",
                size="1",
                variant="soft",
                on_click=S.open_run_action(run.public_id, "requeue"),
                aria_label="Requeue " + run.public_id,
            ),
        ),
        rx.cond(
            run.can_stop,
            rx.button(
                "Stop",
                size="1",
                variant="soft",
                color_scheme="red",
                on_click=S.open_run_action(run.public_id, "stop"),
                aria_label="Stop " + run.public_id,
            ),
        ),
        rx.cond(
            run.can_retry,
            rx.button(
                "Retry",
                size="1",
                variant="soft",
                on_click=S.open_run_action(run.public_id, "retry"),
                aria_label="Retry " + run.public_id,
            ),
        ),
        spacing="2",
        wrap="wrap",
    )


def _run_row(run: RunRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(run.public_id, size="1"), rx.text(run.created, size="1")),
        rx.table.cell(status_badge(run.status, size="1"), rx.text(run.model, size="1")),
        rx.table.cell(rx.text(run.timeline, size="1")),
        rx.table.cell(rx.text(run.failure, size="1", color=rx.color("red", 11))),
        rx.table.cell(run.charged),
        rx.table.cell(_run_buttons(run)),
    )


def _run_action_form() -> rx.Component:
    return rx.cond(
        S.run_action != "",
        rx.form(
            rx.vstack(
                rx.text(S.run_action_label, weight="bold"),
                rx.cond(
                    S.run_action == "refund",
                    rx.vstack(
                        rx.el.label(
                            rx.text("Credits to refund (optional)", size="2", weight="medium"),
                            html_for="refund-amount",
                        ),
                        rx.input(
                            id="refund-amount",
                            name="amount",
                            placeholder="empty = all of it; e.g. 2.5 for part of it",
                            input_mode="decimal",
                            max_length=24,
                            width="100%",
                        ),
                        muted("A run is refunded once: a partial refund cannot be topped up."),
                        spacing="1",
                        width="100%",
                    ),
                ),
                reason_field(
                    "run-action-reason",
                    "Reason (goes into the customer's audit log)",
                    "e.g. provider outage on 26 Nov, ticket #123",
                ),
                rx.hstack(
                    rx.button("Confirm", type="submit"),
                    rx.button(
                        "Cancel", type="button", variant="soft", on_click=S.cancel_run_action
                    ),
                    spacing="2",
                ),
                spacing="2",
                width="100%",
                padding="0.75rem",
                border=f"1px solid {rx.color('accent', 6)}",
                border_radius="var(--radius-3)",
            ),
            on_submit=S.submit_run_action,
            reset_on_submit=True,
            width="100%",
        ),
    )


def _bulk_form(title: str, explanation: str, field_id: str, label: str, handler):
    return rx.form(
        rx.vstack(
            rx.heading(title, size="3", as_="h3"),
            muted(explanation + " One audit entry lists what was acted on and what was skipped."),
            reason_field(field_id, f"Reason ({label.lower()})"),
            rx.button(label, type="submit", variant="soft"),
            spacing="2",
            width="100%",
        ),
        on_submit=handler,
        reset_on_submit=True,
        width="100%",
    )


def _runs() -> rx.Component:
    return card(
        "Recent runs",
        muted(
            "Refund gives back what a run cost, or part of it (a failed run's price as a "
            "goodwill credit), once. "
            "Requeue a queued run, stop a stuck one (its held credits come back), or retry one "
            "failed run before any bulk rerun."
        ),
        _run_action_form(),
        rx.cond(
            S.runs.length() > 0,
            table(
                ["Run", "Status", "Timeline (UTC)", "Failure", "Charged", ""],
                rx.foreach(S.runs, _run_row),
            ),
            muted("No runs yet."),
        ),
        rx.form(
            rx.vstack(
                rx.heading("Rerun failed runs in bulk", size="3", as_="h3"),
                muted(
                    "Only after one single retry of this customer succeeded: reruns up to 20 "
                    "recent failed runs that were not retried yet, for the members who ran them."
                ),
                reason_field("bulk-reason", "Reason for the bulk rerun"),
                rx.button("Rerun failed runs", type="submit", variant="soft"),
                spacing="2",
                width="100%",
            ),
            on_submit=S.bulk_retry,
            reset_on_submit=True,
            width="100%",
        ),
        _bulk_form(
            "Requeue every queued run",
            "Only after you requeued one queued run of this customer: sends up to 50 queued "
            "runs to the queue again, oldest first.",
            "bulk-requeue-reason",
            "Requeue queued runs",
            S.bulk_requeue,
        ),
        _bulk_form(
            "Stop every running run",
            "Only after you stopped one running run of this customer: fails up to 50 running "
            "runs now and returns their held credits. The members can retry them later.",
            "bulk-stop-reason",
            "Stop running runs",
            S.bulk_stop,
        ),
        icon="activity",
    )


def _pending_row(row: PendingRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.amount),
        rx.table.cell(rx.text(row.reason, size="2")),
        rx.table.cell(rx.text(row.created, size="1")),
        rx.table.cell(
            rx.hstack(
                rx.button(
                    "Approve",
                    size="1",
                    on_click=S.approve(row.approval_id),
                    aria_label="Approve adjustment of " + row.amount,
                ),
                rx.button(
                    "Reject",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=S.reject(row.approval_id),
                    aria_label="Reject adjustment of " + row.amount,
                ),
                spacing="2",
            )
        ),
    )


def _adjust() -> rx.Component:
    return card(
        "Adjust credits",
        muted(
            "Positive adds, negative removes. Above ",
            S.threshold,
            " credits a second operator must approve.",
        ),
        rx.form(
            rx.vstack(
                rx.vstack(
                    rx.el.label(
                        rx.text("Credits (+/−)", size="2", weight="medium"),
                        html_for="adjust-amount",
                    ),
                    rx.input(
                        id="adjust-amount",
                        name="amount",
                        placeholder="25 or -10",
                        required=True,
                        max_length=20,
                    ),
                    spacing="1",
                ),
                reason_field("adjust-reason", "Reason for the adjustment"),
                rx.button("Submit adjustment", type="submit"),
                spacing="3",
                width="100%",
            ),
            on_submit=S.adjust,
            reset_on_submit=True,
            width="100%",
        ),
        rx.cond(
            S.pending.length() > 0,
            rx.vstack(
                rx.heading("Waiting for approval", size="3", as_="h3"),
                table(["Credits", "Reason", "Requested", ""], rx.foreach(S.pending, _pending_row)),
                width="100%",
            ),
        ),
        icon="scale",
    )


def _view_as() -> rx.Component:
    return card(
        "View as customer",
        rx.cond(
            S.view_as_until != "",
            rx.vstack(
                rx.callout(
                    rx.text("Viewing as this customer (read-only) until ", S.view_as_until, "."),
                    icon="eye",
                    color_scheme="amber",
                    role="status",
                ),
                rx.button("Stop viewing as", color_scheme="amber", on_click=S.stop_view_as),
                spacing="2",
            ),
            rx.form(
                rx.vstack(
                    muted(
                        "Read-only for 30 minutes: every change is refused while it lasts. Start and "
                        "stop are recorded in the customer's audit log."
                    ),
                    reason_field("view-as-reason", "Reason for viewing as the customer"),
                    rx.button("Start viewing as", type="submit", variant="soft"),
                    spacing="2",
                    width="100%",
                ),
                on_submit=S.start_view_as,
                width="100%",
            ),
        ),
        icon="eye",
    )


def _ledger_row(row: LedgerRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row.when, size="1")),
        rx.table.cell(row.kind),
        rx.table.cell(row.amount),
        rx.table.cell(row.balance_after),
        rx.table.cell(rx.text(row.memo, size="1")),
    )


def _member_row(row: MemberRow) -> rx.Component:
    return rx.table.row(rx.table.cell(row.name), rx.table.cell(row.email), rx.table.cell(row.role))


def _ticket_row(row: TicketRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.subject),
        rx.table.cell(status_badge(row.status, size="1")),
        rx.table.cell(row.created),
    )


def _connection_row(row: ConnectionRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.provider),
        rx.table.cell(row.account),
        rx.table.cell(status_badge(row.status, size="1")),
    )


def _audit_row(row: AuditLine) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row.when, size="1")),
        rx.table.cell(row.actor),
        rx.table.cell(rx.code(row.action, size="1")),
        rx.table.cell(rx.text(row.details, size="1")),
    )


def _lists() -> rx.Component:
    return rx.vstack(
        card(
            "Ledger (latest)",
            table(
                ["When", "Kind", "Credits", "Balance after", "Memo"],
                rx.foreach(S.ledger, _ledger_row),
            ),
            icon="receipt",
        ),
        card(
            "Members",
            table(["Name", "Email", "Role"], rx.foreach(S.members, _member_row)),
            icon="users",
        ),
        card(
            "Support tickets",
            rx.cond(
                S.tickets.length() > 0,
                table(["Subject", "Status", "Opened"], rx.foreach(S.tickets, _ticket_row)),
                muted("No tickets."),
            ),
            icon="life-buoy",
        ),
        card(
            "Connections",
            rx.cond(
                S.connections.length() > 0,
                table(
                    ["Platform", "Account", "Status"], rx.foreach(S.connections, _connection_row)
                ),
                muted("No connected platforms."),
            ),
            icon="plug",
        ),
        card(
            "Audit log (latest)",
            table(["When", "Who", "Action", "Details"], rx.foreach(S.audit, _audit_row)),
            rx.link("Open the full audit log", href=S.audit_href, size="2"),
            icon="scroll-text",
        ),
        spacing="4",
        width="100%",
    )


@rx.page(
    route=CUSTOMER_ROUTE,
    title="Customer · Operator console",
    on_load=[SessionState.require_signed_in, OperatorCustomerState.load],
)
def operator_customer_page() -> rx.Component:
    return operator_frame(
        S,
        "Customer",
        "Plan, credits, runs, members, tickets, connections and audit entries.",
        _summary(),
        _runs(),
        _adjust(),
        _view_as(),
        _lists(),
    )
