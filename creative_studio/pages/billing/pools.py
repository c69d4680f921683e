"""Project pools: credits earmarked for a project; the owner sets them aside or returns them."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import label_for, token_input
from creative_studio.components.page import card, muted, table
from state.billing import BillingState, PoolRow


def _pool_row(pool: PoolRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(pool.project_name),
        rx.table.cell(pool.credits),
        rx.table.cell(
            rx.cond(
                BillingState.is_owner,
                rx.button(
                    "Return to balance",
                    size="1",
                    variant="soft",
                    loading=BillingState.pending == "pool_return",
                    on_click=BillingState.return_pool(pool.project_id, BillingState.form_token),
                    aria_label="Return pooled credits of " + pool.project_name,
                ),
            )
        ),
    )


def _allocate_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.vstack(
                label_for("Project", "pool-project"),
                rx.el.select(
                    rx.foreach(
                        BillingState.projects,
                        lambda p: rx.el.option(p.name, value=p.id),
                    ),
                    id="pool-project",
                    name="project_id",
                    class_name="cs-native-select",
                ),
                spacing="1",
            ),
            rx.vstack(
                label_for("Credits to set aside", "pool-credits"),
                rx.input(
                    id="pool-credits",
                    name="pool_credits",
                    type="number",
                    min="1",
                    required=True,
                    size="3",
                    width="10rem",
                ),
                spacing="1",
            ),
            token_input(BillingState.form_token),
            rx.button("Set aside", type="submit", size="3", variant="soft"),
            align="end",
            spacing="3",
            wrap="wrap",
        ),
        on_submit=BillingState.allocate_pool,
        reset_on_submit=True,
    )


def pools_card() -> rx.Component:
    return card(
        "Project pools",
        muted(
            "Pools earmark part of the balance for a project; runs there draw from the pool first."
        ),
        rx.cond(
            BillingState.pools.length() > 0,
            table(
                ["Project", "Pooled credits", rx.cond(BillingState.is_owner, "Action", "")],
                rx.foreach(BillingState.pools, _pool_row),
            ),
            rx.text(
                "No credits are pooled; every project draws from the shared balance.", size="2"
            ),
        ),
        rx.cond(
            BillingState.is_owner & (BillingState.projects.length() > 0),
            _allocate_form(),
        ),
        icon="folder-input",
        spacing="3",
    )
