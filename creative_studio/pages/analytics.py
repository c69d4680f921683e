"""/org/<slug>/analytics: usage by scope and period, charts, tables, reconciliation, CSV.

Owners, admins and platform operators see the figures; other members get the plain
explanation (`analytics_not_for_role`). Everything shown lives in `state/analytics.py`.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import (
    callout_box,
    error_callout,
    label_for,
    success_callout,
)
from creative_studio.components.page import card, muted, table
from creative_studio.layout import analytics_not_for_role, app_shell
from state.analytics import (
    PERIOD_CHOICES,
    SCOPE_CHOICES,
    AnalyticsState,
    CheckRow,
    DayRow,
    GroupRow,
    Kpi,
    ReconChip,
    ReconDetail,
)
from state.session import SessionState

MODALITY_COLORS = (
    ("text", "var(--accent-9)"),
    ("image", "var(--grass-9)"),
    ("video", "var(--amber-9)"),
)
CHIP_COLORS = (("reconciled", "green"), ("pending", "amber"), ("mismatch", "red"))


# --- selectors ---------------------------------------------------------------------------------


def _picker(label: str, field_id: str, value, on_change, items) -> rx.Component:
    return rx.vstack(
        label_for(label, field_id),
        rx.select.root(
            rx.select.trigger(id=field_id, aria_label=label, min_width="12rem"),
            rx.select.content(*items) if isinstance(items, list) else rx.select.content(items),
            value=value,
            on_change=on_change,
        ),
        spacing="1",
    )


def _custom_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.vstack(
                label_for("From (UTC)", "analytics-from"),
                rx.input(
                    id="analytics-from",
                    name="custom_from",
                    type="date",
                    size="2",
                    default_value=AnalyticsState.custom_from,
                    key=AnalyticsState.custom_from,
                ),
                spacing="1",
            ),
            rx.vstack(
                label_for("To (UTC)", "analytics-to"),
                rx.input(
                    id="analytics-to",
                    name="custom_to",
                    type="date",
                    size="2",
                    default_value=AnalyticsState.custom_to,
                    key=AnalyticsState.custom_to,
                ),
                spacing="1",
            ),
            rx.button("Show", type="submit", size="2", variant="soft"),
            align="end",
            spacing="3",
            wrap="wrap",
        ),
        on_submit=AnalyticsState.apply_custom,
    )


def selectors() -> rx.Component:
    return rx.vstack(
        rx.flex(
            _picker(
                "Period",
                "analytics-period",
                AnalyticsState.period,
                AnalyticsState.set_period,
                [rx.select.item(label, value=key) for key, label in PERIOD_CHOICES],
            ),
            _picker(
                "Scope",
                "analytics-scope",
                AnalyticsState.scope_kind,
                AnalyticsState.set_scope_kind,
                [rx.select.item(label, value=kind) for kind, label in SCOPE_CHOICES],
            ),
            rx.cond(
                AnalyticsState.scope_kind != "org",
                _picker(
                    "Showing",
                    "analytics-scope-value",
                    AnalyticsState.scope_value,
                    AnalyticsState.set_scope_value,
                    rx.foreach(
                        AnalyticsState.scope_values,
                        lambda choice: rx.select.item(choice.label, value=choice.value),
                    ),
                ),
            ),
            rx.spacer(),
            rx.button(
                rx.icon("download", size=16),
                "Export CSV",
                type="button",
                variant="outline",
                on_click=AnalyticsState.export_csv,
            ),
            spacing="3",
            wrap="wrap",
            align="end",
            width="100%",
        ),
        rx.cond(AnalyticsState.period == "custom", _custom_form()),
        muted(
            AnalyticsState.period_label,
            " · ",
            AnalyticsState.scope_label,
            " · all times UTC · roll-up ",
            AnalyticsState.last_rollup,
        ),
        rx.cond(
            AnalyticsState.operator_view,
            callout_box(
                rx.text(
                    "You are reading this organization as a platform operator. ",
                    rx.link("Platform view", href=routes.OPERATOR_ANALYTICS),
                    size="2",
                ),
                icon="shield",
                size="1",
                width="100%",
            ),
        ),
        error_callout(AnalyticsState.error),
        success_callout(AnalyticsState.notice),
        spacing="3",
        width="100%",
    )


# --- KPIs --------------------------------------------------------------------------------------


def _kpi(kpi: Kpi) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(kpi.label, size="2", color=rx.color("gray", 11)),
            rx.text(kpi.value, size="6", weight="bold"),
            rx.text(
                kpi.change,
                size="1",
                color=rx.match(
                    kpi.tone,
                    ("up", rx.color("grass", 11)),
                    ("down", rx.color("red", 11)),
                    rx.color("gray", 10),
                ),
            ),
            spacing="1",
            role="group",
            aria_label=kpi.label,
        ),
        min_width="0",
    )


def kpi_grid() -> rx.Component:
    return rx.grid(
        rx.foreach(AnalyticsState.kpis, _kpi),
        columns=rx.breakpoints(initial="2", sm="3", lg="6"),
        spacing="3",
        width="100%",
    )


# --- charts and tables -------------------------------------------------------------------------


def _daily_chart() -> rx.Component:
    return rx.recharts.bar_chart(
        *[
            rx.recharts.bar(
                data_key=modality, stack_id="credits", fill=color, name=modality.title()
            )
            for modality, color in MODALITY_COLORS
        ],
        rx.recharts.x_axis(data_key="day"),
        rx.recharts.y_axis(width=48),
        rx.recharts.tooltip(),
        rx.recharts.legend(),
        rx.recharts.cartesian_grid(stroke_dasharray="3 3", vertical=False),
        data=AnalyticsState.daily_chart,
        width="100%",
        height=260,
    )


def _bar_chart(data, label: str) -> rx.Component:
    return rx.box(
        rx.recharts.bar_chart(
            rx.recharts.bar(data_key="credits", fill="var(--accent-9)", name="Credits"),
            rx.recharts.x_axis(type_="number"),
            rx.recharts.y_axis(data_key="name", type_="category", width=120),
            rx.recharts.tooltip(),
            data=data,
            layout="vertical",
            width="100%",
            height=220,
        ),
        role="img",
        aria_label=label,
        width="100%",
    )


def _group_row(row: GroupRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(row.label),
        rx.table.cell(row.credits),
        rx.table.cell(row.runs),
        rx.table.cell(row.failures),
    )


def _breakdown(title: str, icon: str, chart_data, rows, first_header: str) -> rx.Component:
    return card(
        title,
        _bar_chart(chart_data, f"Credits by {first_header.lower()}"),
        table([first_header, "Credits", "Runs", "Failures"], rx.foreach(rows, _group_row)),
        icon=icon,
        spacing="3",
    )


def _day_row(row: DayRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(row.day),
        rx.table.cell(row.credits),
        rx.table.cell(row.runs),
        rx.table.cell(row.failures),
    )


def usage_cards() -> rx.Component:
    return rx.vstack(
        card(
            "Credits per day by modality",
            rx.box(
                _daily_chart(), role="img", aria_label="Credits per day by modality", width="100%"
            ),
            table(
                ["Day (UTC)", "Credits", "Runs", "Failures"],
                rx.foreach(AnalyticsState.daily_rows, _day_row),
            ),
            icon="chart-column",
            spacing="3",
        ),
        rx.grid(
            _breakdown(
                "By model", "cpu", AnalyticsState.model_chart, AnalyticsState.model_rows, "Model"
            ),
            _breakdown(
                "By member",
                "users",
                AnalyticsState.member_chart,
                AnalyticsState.member_rows,
                "Member",
            ),
            _breakdown(
                "By project",
                "folder",
                AnalyticsState.project_chart,
                AnalyticsState.project_rows,
                "Project",
            ),
            card(
                "By source",
                table(
                    ["Source", "Credits", "Runs", "Failures"],
                    rx.foreach(AnalyticsState.source_rows, _group_row),
                ),
                muted(
                    "Studio runs, Assistant messages, Competitor Intel reports and API requests."
                ),
                icon="layers",
                spacing="3",
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
        spacing="4",
        width="100%",
    )


# --- reconciliation ----------------------------------------------------------------------------


def _chip(chip: ReconChip) -> rx.Component:
    return rx.button(
        chip.label + " · " + chip.status_label,
        on_click=AnalyticsState.open_reconciliation(chip.day),
        color_scheme=rx.match(chip.status, *CHIP_COLORS, "gray"),
        variant=rx.cond(AnalyticsState.open_day == chip.day, "solid", "soft"),
        size="1",
        aria_label=chip.label + ": " + chip.status_label,
    )


def _detail_row(detail: ReconDetail) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.code(detail.what)),
        rx.table.cell(rx.text(detail.request_id, size="1")),
        rx.table.cell(detail.problem),
        rx.table.cell(detail.difference),
    )


def reconciliation_card() -> rx.Component:
    return card(
        "Reconciliation",
        muted(
            "Each UTC day's metered usage is checked against the credit ledger, the units the "
            "provider reported, and paid invoices. Pending: provider data may still arrive or "
            "runs are still going. Open a day to see what disagrees."
        ),
        rx.cond(
            AnalyticsState.chips.length() > 0,
            rx.flex(
                rx.foreach(AnalyticsState.chips, _chip),
                spacing="2",
                wrap="wrap",
                role="group",
                aria_label="Reconciliation by day",
            ),
            muted("No days with usage in this period."),
        ),
        rx.cond(
            AnalyticsState.open_day != "",
            rx.vstack(
                rx.hstack(
                    rx.heading("Day ", AnalyticsState.open_day, size="3", as_="h3"),
                    rx.badge(
                        AnalyticsState.open_day_status,
                        color_scheme=rx.match(AnalyticsState.open_day_status, *CHIP_COLORS, "gray"),
                    ),
                    rx.spacer(),
                    rx.button(
                        "Close",
                        variant="ghost",
                        size="1",
                        on_click=AnalyticsState.close_reconciliation,
                    ),
                    align="center",
                    width="100%",
                ),
                muted(AnalyticsState.open_day_summary),
                rx.cond(
                    AnalyticsState.open_day_details.length() > 0,
                    table(
                        [
                            "Generation or invoice",
                            "Request",
                            "What disagrees",
                            "Difference (credits)",
                        ],
                        rx.foreach(AnalyticsState.open_day_details, _detail_row),
                    ),
                ),
                rx.text(
                    "If in-app totals and your receipts diverge, contact support with the invoice "
                    "numbers and the generation ids above.",
                    size="1",
                    color=rx.color("gray", 10),
                ),
                spacing="2",
                width="100%",
            ),
        ),
        icon="scale",
        spacing="3",
    )


# --- why is this empty -------------------------------------------------------------------------


def _check(item: CheckRow) -> rx.Component:
    return rx.hstack(
        rx.cond(
            item.ok,
            rx.icon(
                "circle-check",
                color=rx.color("grass", 10),
                size=18,
                flex_shrink="0",
                aria_label="OK",
            ),
            rx.icon(
                "circle-x", color=rx.color("red", 10), size=18, flex_shrink="0", aria_label="Check"
            ),
        ),
        rx.vstack(
            rx.text(item.label, weight="medium", size="2"),
            muted(item.detail),
            spacing="0",
        ),
        align="start",
        spacing="2",
        role="listitem",
    )


def checklist_card(title: str) -> rx.Component:
    return card(
        title,
        rx.vstack(rx.foreach(AnalyticsState.checks, _check), spacing="3", role="list"),
        icon="list-checks",
        spacing="3",
    )


def empty_state() -> rx.Component:
    return rx.vstack(
        card(
            "No usage in this view",
            muted(
                "Analytics shows what your organization spends credits on: runs in Creative "
                "Studio, Assistant messages, Competitor Intel reports and API requests, by day, "
                "model, member and project, checked against the credit ledger."
            ),
            rx.link("Open Creative Studio", href="/org/" + SessionState.org_slug + "/studio"),
            icon="chart-no-axes-column",
            spacing="2",
        ),
        checklist_card("Why is this empty?"),
        spacing="4",
        width="100%",
    )


def analytics_content() -> rx.Component:
    return rx.vstack(
        selectors(),
        rx.cond(
            AnalyticsState.loaded,
            rx.vstack(
                kpi_grid(),
                rx.cond(
                    AnalyticsState.empty,
                    empty_state(),
                    rx.vstack(
                        usage_cards(),
                        reconciliation_card(),
                        checklist_card("Data checks"),
                        spacing="4",
                        width="100%",
                    ),
                ),
                spacing="4",
                width="100%",
            ),
            rx.center(rx.spinner(size="3"), padding="3rem", width="100%"),
        ),
        spacing="4",
        width="100%",
    )


@rx.page(
    route=routes.org_page_route("analytics"),
    title="Analytics · Creative Studio",
    on_load=AnalyticsState.load,
)
def analytics_page() -> rx.Component:
    return app_shell(
        "analytics",
        "Analytics",
        "Usage by period, project, member, model and source, reconciled with the ledger.",
        rx.cond(
            SessionState.allowed_actions.contains("analytics_view"),
            analytics_content(),
            analytics_not_for_role(),
        ),
    )
