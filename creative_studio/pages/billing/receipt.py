"""A receipt of one invoice: what was paid, when, for which period (local payment mode has no
Stripe-hosted invoice page, so this page stands in for it)."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout
from creative_studio.layout import app_shell
from state.billing import ReceiptState


def _line(label: str, value) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color=rx.color("gray", 11), min_width="7rem"),
        rx.text(value, size="2", weight="medium"),
        spacing="3",
        wrap="wrap",
    )


def _receipt_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.cond(
                ReceiptState.local,
                rx.callout(
                    "Local payment mode — no real money moved. This receipt records what the "
                    "local checkout confirmed.",
                    icon="flask-conical",
                    color_scheme="amber",
                    width="100%",
                    role="note",
                ),
            ),
            rx.heading("Payment details", size="5", as_="h2"),
            _line("Organization", ReceiptState.org_name),
            _line("Invoice", ReceiptState.invoice_id),
            _line("Date", ReceiptState.date),
            _line("For", ReceiptState.kind),
            rx.cond(ReceiptState.period != "", _line("Period", ReceiptState.period)),
            rx.cond(ReceiptState.credits != "", _line("Credits", ReceiptState.credits)),
            _line("Status", ReceiptState.status),
            rx.hstack(
                rx.text("Amount", size="3", color=rx.color("gray", 11)),
                rx.text(ReceiptState.amount, size="6", weight="bold"),
                align="baseline",
                spacing="3",
            ),
            rx.link("Back to Billing", href=ReceiptState.billing_path),
            spacing="3",
            width="100%",
        ),
        max_width="36rem",
        width="100%",
    )


@rx.page(
    route=routes.org_local_receipt_route(),
    title="Receipt · Creative Studio",
    on_load=ReceiptState.load,
)
def receipt_page() -> rx.Component:
    return app_shell(
        "billing",
        "Receipt",
        "What was paid, when and for which period.",
        error_callout(ReceiptState.error),
        rx.cond(ReceiptState.ready, _receipt_card()),
    )
