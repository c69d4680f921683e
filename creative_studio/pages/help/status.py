"""/status: platform status, public. State: state/status.py."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.page import card, muted
from creative_studio.layout import page_header
from creative_studio.pages.help.shared import public_frame
from state.status import ComponentRow, IncidentRow, StatusState

LEVEL_COLORS = (("operational", "green"), ("degraded", "amber"), ("outage", "red"))


def component_line(row: ComponentRow) -> rx.Component:
    return rx.flex(
        rx.vstack(
            rx.text(row.name, weight="medium"),
            rx.cond(row.reason != "", muted(row.reason)),
            spacing="1",
            min_width="0",
        ),
        rx.spacer(),
        rx.badge(row.label, color_scheme=rx.match(row.level, *LEVEL_COLORS, "gray"), size="2"),
        align="center",
        gap="0.75rem",
        width="100%",
        padding_y="0.5rem",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
    )


def incident_card(row: IncidentRow) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.badge(
                    row.status_label,
                    color_scheme=rx.cond(row.status == "resolved", "green", "amber"),
                ),
                rx.heading(row.title, size="3", as_="h3"),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            muted("Affects ", row.components, " · started ", row.started),
            rx.foreach(
                row.updates,
                lambda u: rx.text(rx.text.strong(u.status), " · ", u.at, " — ", u.body, size="2"),
            ),
            spacing="2",
        ),
        width="100%",
    )


@rx.page(route=routes.STATUS, title="Platform status · Creative Studio", on_load=StatusState.load)
def status_page() -> rx.Component:
    return public_frame(
        page_header("Platform status", "Live from the product's own signals and our incidents."),
        rx.callout(
            StatusState.headline,
            icon="activity",
            color_scheme=rx.match(StatusState.level, *LEVEL_COLORS, "gray"),
            size="3",
            role="status",
            width="100%",
        ),
        card(
            "Components",
            rx.vstack(
                rx.foreach(StatusState.components, component_line), spacing="0", width="100%"
            ),
            muted("Checked ", StatusState.checked_at),
        ),
        rx.cond(
            StatusState.open_incidents.length() > 0,
            card("Open incidents", rx.foreach(StatusState.open_incidents, incident_card)),
        ),
        card(
            "Past incidents (90 days)",
            rx.cond(
                StatusState.past_incidents.length() > 0,
                rx.vstack(rx.foreach(StatusState.past_incidents, incident_card), width="100%"),
                muted("No incidents in the last 90 days."),
            ),
        ),
    )
