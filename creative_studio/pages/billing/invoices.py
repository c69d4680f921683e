"""Invoices and receipts: what was paid; the owner opens the hosted receipt."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.page import card, table
from state.billing import BillingState, InvoiceRow

INVOICE_HEADERS = ["Date", "What", "Period", "Status", "Amount", "Credits", "Receipt"]


def _invoice_row(invoice: InvoiceRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(invoice.date),
        rx.table.cell(invoice.kind),
        rx.table.cell(invoice.period),
        rx.table.cell(invoice.status),
        rx.table.cell(invoice.amount),
        rx.table.cell(invoice.credits),
        rx.table.cell(
            rx.cond(
                invoice.url != "",
                rx.link("View receipt", href=invoice.url, is_external=True),
                rx.text(invoice.id, size="1", color=rx.color("gray", 10)),
            )
        ),
    )


def invoices_card() -> rx.Component:
    return card(
        "Invoices and receipts",
        rx.cond(
            BillingState.invoices.length() > 0,
            table(INVOICE_HEADERS, rx.foreach(BillingState.invoices, _invoice_row)),
            rx.text(
                "No invoices yet. Receipts appear here after a purchase or a paid subscription "
                "invoice.",
                size="2",
            ),
        ),
        icon="receipt",
        spacing="3",
        overflow_x="auto",
    )
