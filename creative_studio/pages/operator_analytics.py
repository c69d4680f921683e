"""/operator/analytics: the platform view for operators (top organizations, revenue by day).

State: `OperatorAnalyticsState` in state/analytics.py. Each organization links to its own
Analytics page, which operators may read for any organization.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, label_for
from creative_studio.components.page import card, muted, table
from creative_studio.layout import explanation_card, loading, page_header
from state.analytics import PLATFORM_PERIODS, OperatorAnalyticsState, OrgRow


def _org_row(row: OrgRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.link(row.name, href=row.href)),
        rx.table.cell(row.credits),
        rx.table.cell(row.runs),
        rx.table.cell(row.failures),
    )


def _top(title: str, icon: str, rows, empty: str = "No usage in this period.") -> rx.Component:
    return card(
        title,
        rx.cond(
            rows.length() > 0,
            table(["Organization", "Credits", "Runs", "Failures"], rx.foreach(rows, _org_row)),
            muted(empty),
        ),
        icon=icon,
        spacing="3",
    )


def _content() -> rx.Component:
    return rx.vstack(
        rx.vstack(
            label_for("Period", "platform-period"),
            rx.select.root(
                rx.select.trigger(id="platform-period", aria_label="Period", min_width="12rem"),
                rx.select.content(
                    *[rx.select.item(label, value=key) for key, label in PLATFORM_PERIODS]
                ),
                value=OperatorAnalyticsState.period,
                on_change=OperatorAnalyticsState.set_period,
            ),
            muted(OperatorAnalyticsState.period_label, " · all times UTC"),
            spacing="1",
        ),
        error_callout(OperatorAnalyticsState.error),
        card(
            "Revenue by day",
            rx.box(
                rx.recharts.bar_chart(
                    rx.recharts.bar(data_key="revenue", fill="var(--grass-9)", name="Revenue"),
                    rx.recharts.x_axis(data_key="day"),
                    rx.recharts.y_axis(width=56),
                    rx.recharts.tooltip(),
                    data=OperatorAnalyticsState.revenue_chart,
                    width="100%",
                    height=240,
                ),
                role="img",
                aria_label="Revenue by day",
                width="100%",
            ),
            muted(OperatorAnalyticsState.revenue_total),
            rx.cond(
                OperatorAnalyticsState.revenue_total.startswith("0.00 "),
                muted("No paid invoices in this period."),
            ),
            rx.cond(
                OperatorAnalyticsState.revenue_note != "",
                muted(OperatorAnalyticsState.revenue_note),
            ),
            icon="banknote",
            spacing="3",
        ),
        rx.grid(
            _top("Top organizations by credits", "coins", OperatorAnalyticsState.top_credits),
            _top("Top organizations by runs", "play", OperatorAnalyticsState.top_runs),
            _top(
                "Top organizations by failures",
                "triangle-alert",
                OperatorAnalyticsState.top_failures,
                "No failed runs in this period.",
            ),
            columns=rx.breakpoints(initial="1", lg="2"),
            spacing="4",
            width="100%",
        ),
        spacing="4",
        width="100%",
    )


@rx.page(
    route=routes.OPERATOR_ANALYTICS,
    title="Platform analytics · Creative Studio",
    on_load=OperatorAnalyticsState.load,
)
def operator_analytics_page() -> rx.Component:
    return rx.box(
        rx.vstack(
            rx.link("← Operator console", href=routes.OPERATOR_HOME, size="2"),
            page_header(
                "Platform analytics",
                "Usage across every organization and revenue from paid invoices.",
            ),
            rx.cond(
                OperatorAnalyticsState.loaded,
                rx.cond(
                    OperatorAnalyticsState.allowed,
                    _content(),
                    explanation_card(
                        "Platform analytics is for operators",
                        OperatorAnalyticsState.denied_message,
                    ),
                ),
                loading(),
            ),
            spacing="5",
            padding=["1rem", "1.5rem", "2rem"],
            max_width="72rem",
            width="100%",
            margin="0 auto",
        ),
        role="main",
        width="100%",
    )
