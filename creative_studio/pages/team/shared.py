"""Pieces more than one Team section uses: the messages under a card, the project picker."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import error_callout, label_for, success_callout
from creative_studio.components.limit_notice import limit_notice
from creative_studio.components.page import muted
from state.team import TeamState


def messages(section: str) -> rx.Component:
    """What the last action in `section` led to, shown in the card that triggered it."""
    shown = (
        (TeamState.error != "") | (TeamState.notice != "") | (TeamState.limit_notice.limit != "")
    )
    return rx.cond(
        (TeamState.section == section) & shown,  # no empty gap when there is nothing to say
        rx.vstack(
            error_callout(TeamState.error),
            success_callout(TeamState.notice),
            limit_notice(TeamState.limit_notice, TeamState.billing_href),
            spacing="2",
            width="100%",
        ),
    )


def project_checkboxes(selected, on_toggle, prefix: str) -> rx.Component:
    """One checkbox per active project; `prefix` keeps ids unique between the two pickers."""
    return rx.cond(
        TeamState.project_options.length() > 0,
        rx.flex(
            rx.foreach(
                TeamState.project_options,
                lambda option: rx.hstack(
                    rx.checkbox(
                        id=prefix + option.field_id,
                        checked=selected.contains(option.project_id),
                        on_change=lambda checked: on_toggle(option.project_id, checked),
                    ),
                    label_for(option.name, prefix + option.field_id, weight="regular"),
                    align="center",
                    spacing="2",
                ),
            ),
            column_gap="1.5rem",
            row_gap="0.5rem",
            wrap="wrap",
            role="group",
            aria_label="Projects",
        ),
        muted("There are no active projects yet. Create one in Projects below, or choose Editor."),
    )
