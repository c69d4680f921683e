"""Credits: the balance and what it is made of, and buying more in blocks."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import label_for
from creative_studio.components.page import card, muted, stat
from state.billing import OWNER_ONLY_LINE, BillingState


def credits_card() -> rx.Component:
    return card(
        "Credits",
        rx.grid(
            stat("Balance", BillingState.balance, "credits"),
            stat("In project pools", BillingState.pooled, "part of the balance"),
            stat("Unpooled", BillingState.available, "usable by any project"),
            stat("Used this cycle", BillingState.usage, "since " + BillingState.cycle_start),
            stat("Seats", BillingState.seats, "members and pending invites"),
            columns=rx.breakpoints(initial="2", sm="3"),
            spacing="4",
            width="100%",
        ),
        rx.cond(
            BillingState.low_balance,
            rx.callout(
                "The balance is below the low-balance alert of " + BillingState.alert + " credits.",
                icon="triangle-alert",
                color_scheme="amber",
                width="100%",
            ),
        ),
        rx.text(BillingState.credits_rule, size="1", color=rx.color("gray", 10)),
        icon="coins",
        spacing="3",
    )


def _top_up_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.hstack(
                rx.vstack(
                    label_for("Number of blocks (10 credits each)", "top-up-blocks"),
                    rx.input(
                        id="top-up-blocks",
                        name="blocks",
                        type="number",
                        min="1",
                        max=BillingState.max_blocks,
                        step="1",
                        value=BillingState.blocks,
                        on_change=BillingState.set_blocks,
                        size="3",
                        width="10rem",
                    ),
                    spacing="1",
                ),
                rx.button("Continue to checkout", type="submit", size="3"),
                align="end",
                spacing="3",
                wrap="wrap",
            ),
            rx.text(BillingState.top_up_quote, size="2", weight="medium", aria_live="polite"),
            spacing="2",
        ),
        on_submit=BillingState.buy_credits,
    )


def top_up_card() -> rx.Component:
    return card(
        "Add credits",
        rx.text(BillingState.terms, size="2"),
        rx.cond(BillingState.is_owner, _top_up_form(), muted(OWNER_ONLY_LINE)),
        icon="circle-plus",
        spacing="3",
    )
