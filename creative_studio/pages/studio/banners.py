"""What the studio says above everything else: models swapped for their backup, and, to a
role that may browse but not run, why the Run button will not start anything."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import callout_box
from creative_studio.layout import explanation_card
from state.session import SessionState
from state.studio import StudioState


def swap_banner() -> rx.Component:
    return rx.foreach(
        StudioState.swaps,
        lambda swap: callout_box(
            rx.text(
                rx.text.strong(swap.model_name),
                " is temporarily replaced by ",
                rx.text.strong(swap.backup_name),
                ". Runs that pick it use ",
                swap.backup_name,
                " and its rate until the platform team switches it back.",
            ),
            icon="arrow-left-right",
            color_scheme="amber",
            role="status",
            width="100%",
        ),
    )


def viewer_note() -> rx.Component:
    return rx.cond(
        SessionState.allowed_actions.contains("tool_run"),
        rx.fragment(),
        explanation_card(
            "You can browse, not run",
            "Your role in this organization can look at models and past runs but cannot start "
            "new ones. The reasons are listed next to the Run button.",
        ),
    )
