"""Credit history: the ledger, filtered by kind and day, and its CSV export."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import label_for
from creative_studio.components.page import card
from state.billing import KIND_LABELS, LEDGER_PAGE_SIZE, BillingState, LedgerRow

LEDGER_HEADERS = ("When (UTC)", "Kind", "Credits", "Balance after", "Details")


def _filters_form() -> rx.Component:
    kind_options = [rx.el.option("All kinds", value="all")] + [
        rx.el.option(label, value=kind) for kind, label in KIND_LABELS.items()
    ]
    return rx.form(
        rx.hstack(
            rx.vstack(
                label_for("Kind", "ledger-kind"),
                rx.el.select(
                    *kind_options, id="ledger-kind", name="kind", class_name="cs-native-select"
                ),
                spacing="1",
            ),
            rx.vstack(
                label_for("From", "ledger-since"),
                rx.input(id="ledger-since", name="since", type="date", size="3"),
                spacing="1",
            ),
            rx.vstack(
                label_for("To", "ledger-until"),
                rx.input(id="ledger-until", name="until", type="date", size="3"),
                spacing="1",
            ),
            rx.button("Apply filters", type="submit", size="3", variant="soft"),
            rx.button(
                rx.icon("download", size=16),
                "Export CSV",
                type="button",
                size="3",
                variant="outline",
                on_click=BillingState.export_csv,
            ),
            align="end",
            spacing="3",
            wrap="wrap",
        ),
        on_submit=BillingState.apply_filters,
    )


def _ledger_row(row: LedgerRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.date, white_space="nowrap"),
        rx.table.cell(row.kind),
        rx.table.cell(
            rx.text(
                row.amount,
                color=rx.cond(row.positive, rx.color("green", 11), rx.color("gray", 12)),
                weight="medium",
            )
        ),
        rx.table.cell(row.balance_after),
        rx.table.cell(row.detail),
    )


def _ledger_table() -> rx.Component:
    # Its own table root (not the shared `table`) to keep the accessible name "Credit history".
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(*[rx.table.column_header_cell(h) for h in LEDGER_HEADERS])
            ),
            rx.table.body(rx.foreach(BillingState.ledger, _ledger_row)),
            width="100%",
            aria_label="Credit history",
        ),
        width="100%",
        overflow_x="auto",
    )


def ledger_card() -> rx.Component:
    return card(
        "Credit history",
        _filters_form(),
        rx.cond(
            BillingState.ledger.length() > 0,
            _ledger_table(),
            rx.text("No entries match these filters.", size="2"),
        ),
        rx.text(
            f"Showing the newest {LEDGER_PAGE_SIZE} matching entries; the CSV export has all of "
            "them.",
            size="1",
            color=rx.color("gray", 10),
        ),
        icon="history",
        spacing="3",
    )
