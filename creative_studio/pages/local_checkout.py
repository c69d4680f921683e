"""Local payment mode's checkout page: the owner reviews and confirms; no real money moves.

Confirming produces the same signed event JSON as Stripe and sends it through the same
verification and fulfilment code; the state is `state.local_checkout`.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, field
from creative_studio.layout import app_shell
from state.local_checkout import LocalCheckoutState


def _checkout_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.callout(
                "Local payment mode — no real money moves. This page stands in for Stripe Checkout "
                "because no Stripe keys are configured.",
                icon="flask-conical",
                color_scheme="amber",
                width="100%",
                role="note",
            ),
            rx.heading(LocalCheckoutState.title, size="5", as_="h2"),
            rx.foreach(LocalCheckoutState.lines, lambda line: rx.text(line, size="3")),
            rx.hstack(
                rx.text(
                    rx.cond(LocalCheckoutState.completed != "", "Paid", "Total"),
                    size="3",
                    color=rx.color("gray", 11),
                ),
                rx.text(LocalCheckoutState.amount, size="6", weight="bold"),
                align="baseline",
                spacing="3",
            ),
            rx.cond(
                LocalCheckoutState.completed != "",
                rx.vstack(
                    rx.badge(
                        rx.icon("circle-check", size=14),
                        "Completed " + LocalCheckoutState.completed,
                        color_scheme="green",
                        size="2",
                    ),
                    rx.link(
                        rx.button("Back to Billing", size="3", type="button"),
                        href=LocalCheckoutState.billing_path,
                    ),
                    spacing="3",
                ),
                _confirm_form(),
            ),
            spacing="4",
            width="100%",
        ),
        max_width="36rem",
        width="100%",
    )


def _confirm_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.cond(
                LocalCheckoutState.purpose == "billing_profile",
                field(
                    "Name on the billing profile",
                    "billing_name",
                    autocomplete="organization",
                    field_id="billing-name",
                    required=True,
                ),
            ),
            rx.hstack(
                rx.button(
                    rx.cond(
                        LocalCheckoutState.purpose == "billing_profile",
                        "Save billing profile",
                        "Confirm payment",
                    ),
                    type="submit",
                    size="3",
                    loading=LocalCheckoutState.done,
                ),
                rx.link(
                    rx.button(
                        "Cancel",
                        variant="soft",
                        color_scheme="gray",
                        size="3",
                        type="button",
                    ),
                    href=LocalCheckoutState.cancel_path,
                ),
                spacing="3",
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=LocalCheckoutState.confirm,
        width="100%",
    )


@rx.page(
    route=routes.org_local_checkout_route(),
    title="Local checkout · Creative Studio",
    on_load=LocalCheckoutState.load,
)
def local_checkout_page() -> rx.Component:
    return app_shell(
        "billing",
        "Checkout",
        "Review and confirm.",
        error_callout(LocalCheckoutState.error),
        rx.cond(LocalCheckoutState.ready, _checkout_card()),
        rx.cond(
            ~LocalCheckoutState.ready & (LocalCheckoutState.error != ""),
            rx.link("Back to Billing", href=LocalCheckoutState.cancel_path),
        ),
    )
