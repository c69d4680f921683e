"""The upgrade modal: which plan a locked model needs, what it unlocks, its price, and the way
forward (owners: Billing; everyone else: ask the owner). A Radix dialog: focus moves into it,
Tab stays inside, Escape closes it and focus returns to the model row."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import callout_box


def upgrade_modal(offer, open_var, on_open_change) -> rx.Component:
    """`offer`: an `UpgradeOffer` var (state/model_choice.py); `open_var` opens the dialog."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.vstack(
                rx.hstack(
                    rx.icon("lock-open", size=20, color=rx.color("amber", 10), aria_hidden="true"),
                    rx.dialog.title(
                        "Upgrade to ", offer.plan_name, " to use ", offer.model_name, margin="0"
                    ),
                    align="center",
                    spacing="2",
                ),
                rx.dialog.description(
                    offer.model_name,
                    " needs the ",
                    rx.text.strong(offer.plan_name),
                    " plan or higher. ",
                    offer.plan_name,
                    " costs ",
                    rx.text.strong(offer.price_label),
                    ".",
                    size="2",
                    color=rx.color("gray", 11),
                ),
                rx.box(
                    rx.text("What it unlocks", size="2", weight="medium"),
                    rx.el.ul(
                        rx.foreach(
                            offer.unlocks,
                            lambda item: rx.el.li(rx.text(item, size="2")),
                        ),
                        style={"padding_left": "1.25rem", "margin_top": "0.25rem"},
                    ),
                    width="100%",
                ),
                rx.cond(
                    offer.is_owner,
                    rx.text(
                        "Change the plan in Billing; the new models are available right after.",
                        size="2",
                    ),
                    callout_box(
                        rx.text(
                            "Only the organization owner can change the plan. Ask your owner (",
                            offer.owner_names,
                            ") to upgrade in Billing.",
                        ),
                        icon="info",
                        color_scheme="blue",
                        size="1",
                        width="100%",
                    ),
                ),
                rx.hstack(
                    rx.dialog.close(
                        rx.button("Not now", variant="soft", color_scheme="gray", type="button")
                    ),
                    rx.link(
                        rx.button(
                            rx.cond(offer.is_owner, "Upgrade in Billing", "Open Billing"),
                            type="button",
                            tab_index=-1,
                        ),
                        href=offer.billing_href,
                        underline="none",
                    ),
                    justify="end",
                    spacing="3",
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
            max_width="30rem",
        ),
        open=open_var,
        on_open_change=on_open_change,
    )
