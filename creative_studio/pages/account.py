"""/account/security: leads to Settings > Security (state/account.py); without an organization
yet, says where security settings will be."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.layout import centered_card
from state.account import AccountSecurityState


@rx.page(
    route=routes.ACCOUNT_SECURITY,
    title="Account security · Creative Studio",
    on_load=AccountSecurityState.open,
)
def account_security_page() -> rx.Component:
    return centered_card(
        rx.heading("Account security", size="6", as_="h1"),
        rx.cond(
            AccountSecurityState.has_org,
            rx.text("Opening Settings > Security…", size="2"),
            rx.vstack(
                rx.text(
                    "Two-factor authentication, your sessions and your password are in "
                    "Settings > Security of your organization. You do not belong to one yet: "
                    "create one (or accept an invitation) to reach them.",
                    size="2",
                ),
                rx.link("Create an organization", href=routes.NEW_ORG, size="2"),
                spacing="3",
            ),
        ),
    )
