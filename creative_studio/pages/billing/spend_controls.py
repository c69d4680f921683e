"""Spend controls: the owner sets a monthly cap and a low-balance alert; others read them."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import label_for
from creative_studio.components.page import card
from state.billing import BillingState


def _credits_input(label: str, field_id: str, name: str, minimum: str, value, placeholder: str):
    return rx.vstack(
        label_for(label, field_id),
        rx.input(
            id=field_id,
            name=name,
            type="number",
            min=minimum,
            default_value=value,
            key=value,
            placeholder=placeholder,
            size="3",
            width="12rem",
        ),
        spacing="1",
    )


def _spend_controls_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.hstack(
                _credits_input(
                    "Monthly spend cap (credits)",
                    "monthly-cap",
                    "monthly_cap",
                    "1",
                    BillingState.cap,
                    "No cap",
                ),
                _credits_input(
                    "Low-balance alert (credits)",
                    "low-balance-alert",
                    "low_balance_alert",
                    "0",
                    BillingState.alert,
                    "No alert",
                ),
                rx.button("Save spend controls", type="submit", size="3", variant="soft"),
                align="end",
                spacing="3",
                wrap="wrap",
            ),
            rx.text(
                "Leave a field empty to turn it off. The cap counts credits spent in the current "
                "billing cycle (since " + BillingState.cycle_start + "); changing plans does not "
                "restart it.",
                size="1",
                color=rx.color("gray", 10),
            ),
            spacing="2",
        ),
        on_submit=BillingState.save_spend_controls,
    )


def _spend_controls_read_only() -> rx.Component:
    return rx.vstack(
        rx.text(
            "Monthly spend cap: ",
            rx.text.strong(rx.cond(BillingState.cap != "", BillingState.cap + " credits", "none")),
            size="2",
        ),
        rx.text(
            "Low-balance alert: ",
            rx.text.strong(
                rx.cond(BillingState.alert != "", BillingState.alert + " credits", "none")
            ),
            size="2",
        ),
        spacing="1",
    )


def spend_controls_card() -> rx.Component:
    return card(
        "Spend controls",
        rx.cond(BillingState.is_owner, _spend_controls_form(), _spend_controls_read_only()),
        icon="gauge",
        spacing="3",
    )
