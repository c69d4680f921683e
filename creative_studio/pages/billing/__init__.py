"""Billing: plan, credits, pools, seats, usage, invoices, ledger, rates; owner-only changes.

The page entry only assembles the sections; each section is a module of this package and the
state (handlers, read models, formatting) is `state.billing`.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, success_callout
from creative_studio.layout import app_shell
from creative_studio.pages.billing.credits import credits_card, top_up_card
from creative_studio.pages.billing.invoices import invoices_card
from creative_studio.pages.billing.ledger import ledger_card
from creative_studio.pages.billing.plan import (
    billing_profile_card,
    local_badge,
    plan_card,
    plans_card,
    read_only_note,
)
from creative_studio.pages.billing.pools import pools_card
from creative_studio.pages.billing.rates import rates_card
from creative_studio.pages.billing.receipt import receipt_page  # noqa: F401  (registers the page)
from creative_studio.pages.billing.spend_controls import spend_controls_card
from state.billing import BillingState

NATIVE_SELECT_CSS = """
.cs-native-select { height: var(--space-7); min-width: 12rem; padding: 0 0.5rem; border-radius: var(--radius-2);
  border: 1px solid var(--gray-7); background: var(--color-surface); color: var(--gray-12); font-size: var(--font-size-2); }
"""


def _two_columns(*cards: rx.Component) -> rx.Component:
    return rx.grid(*cards, columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%")


def billing_content() -> rx.Component:
    return rx.vstack(
        rx.el.style(NATIVE_SELECT_CSS),
        error_callout(BillingState.error),
        success_callout(BillingState.notice),
        read_only_note(),
        billing_profile_card(),
        _two_columns(plan_card(), credits_card()),
        top_up_card(),
        plans_card(),
        _two_columns(pools_card(), spend_controls_card()),
        invoices_card(),
        ledger_card(),
        rates_card(),
        spacing="4",
        width="100%",
    )


@rx.page(
    route=routes.org_page_route("billing"),
    title="Billing · Creative Studio",
    on_load=BillingState.load,
)
def billing_page() -> rx.Component:
    return app_shell(
        "billing",
        "Billing",
        "Plan, credits, invoices and spend controls.",
        rx.cond(BillingState.loaded, billing_content(), rx.fragment()),
        action=local_badge(),
    )
