"""/orgs/new: create an organization (a new account's first step, or another org later).

State: state/org_new.py.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, field, submit_button, token_input
from creative_studio.layout import centered_card
from state.org_new import NewOrgState
from state.session import SessionState


@rx.page(
    route=routes.NEW_ORG,
    title="New organization · Creative Studio",
    on_load=[SessionState.require_signed_in, NewOrgState.load],
)
def new_org_page() -> rx.Component:
    return centered_card(
        rx.heading("Create an organization", size="6", as_="h1"),
        rx.text(
            "Your team's workspace: projects, members, credits and billing live here. "
            "It starts on the Free plan; you can upgrade later in Billing.",
            size="2",
            color=rx.color("gray", 11),
        ),
        error_callout(NewOrgState.error),
        rx.form(
            rx.vstack(
                field(
                    "Organization name",
                    "name",
                    autocomplete="organization",
                    required=True,
                    placeholder="Acme Marketing",
                ),
                token_input(NewOrgState.form_token),
                submit_button(
                    "Create organization", pending=NewOrgState.pending, size="3", width="100%"
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=NewOrgState.create,
            width="100%",
        ),
        rx.cond(
            SessionState.orgs.length() > 0,
            rx.link("Back to my workspace", href=routes.INDEX, size="2"),
        ),
    )
