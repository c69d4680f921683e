"""Settings > Logs (/org/<slug>/settings/logs): every /v1 request, by request id and filters.

View only; everything it shows or does lives in `state/api_logs.py`.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, field, label_for, success_callout
from creative_studio.components.page import card, muted, table
from creative_studio.layout import app_shell
from state.api_logs import ApiLogsState, LedgerLineView, LogRowView

S = ApiLogsState


def _filter(label: str, field_id: str, value, on_change, choices) -> rx.Component:
    return rx.vstack(
        label_for(label, field_id),
        rx.select.root(
            rx.select.trigger(id=field_id, width="100%"),
            rx.select.content(
                rx.foreach(choices, lambda c: rx.select.item(c.label, value=c.value))
            ),
            value=value,
            on_change=on_change,
        ),
        spacing="1",
        flex="1",
        min_width="10rem",
    )


def _search_card() -> rx.Component:
    return card(
        "Find a request",
        muted(
            "Every API response carries its request id in the x-request-id header and in error "
            "bodies. Paste one to find it on any date; share it with support when asking for help. ",
            f"Requests are kept {S.retention_days} days, then deleted.",
        ),
        rx.form(
            rx.flex(
                rx.box(
                    field(
                        "Request id",
                        "request_id",
                        field_id="log-request-id",
                        placeholder="req_…",
                        max_length=64,
                    ),
                    flex="2",
                    min_width="14rem",
                ),
                rx.button(rx.icon("search", size=16), "Search", type="submit", size="3"),
                rx.button(
                    "Show all", variant="soft", size="3", type="button", on_click=S.clear_search
                ),
                gap="0.75rem",
                align="end",
                wrap="wrap",
                width="100%",
            ),
            on_submit=S.search,
            reset_on_submit=False,
            width="100%",
        ),
        rx.flex(
            _filter("Status", "log-status", S.status_filter, S.set_status_filter, S.status_choices),
            _filter("Error code", "log-code", S.code_filter, S.set_code_filter, S.code_choices),
            _filter("Model", "log-model", S.model_filter, S.set_model_filter, S.model_choices),
            _filter("Key", "log-key", S.key_filter, S.set_key_filter, S.key_choices),
            gap="0.75rem",
            wrap="wrap",
            width="100%",
        ),
        error_callout(S.error),
        success_callout(S.notice),
        icon="search",
    )


def _row(row: LogRowView) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(rx.code(row.request_id), muted(row.when), spacing="1")),
        rx.table.cell(rx.vstack(rx.text(row.route, size="2"), muted(row.stream), spacing="1")),
        rx.table.cell(
            rx.badge(row.status, color_scheme=rx.cond(row.ok, "green", "red"), variant="soft")
        ),
        rx.table.cell(row.error_code),
        rx.table.cell(row.model),
        rx.table.cell(rx.text(row.key, size="2")),
        rx.table.cell(
            rx.vstack(
                rx.cond(
                    row.generation != "—",
                    rx.code(row.generation, size="2"),
                    muted("—"),
                ),
                rx.cond(row.ledger != "—", muted(row.ledger), rx.fragment()),
                rx.cond(
                    row.generation != "—",
                    rx.button(
                        "Run and ledger",
                        size="1",
                        variant="soft",
                        on_click=S.open_detail(row.request_id),
                        aria_label="Run and ledger of " + row.request_id,
                    ),
                    rx.fragment(),
                ),
                spacing="1",
                align="start",
            )
        ),
        rx.table.cell(row.credits),
        rx.table.cell(row.duration),
    )


def _fact(label: str, value) -> rx.Component:
    return rx.data_list.item(rx.data_list.label(label), rx.data_list.value(value))


def _ledger_line(line: LedgerLineView) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.badge(line.kind, variant="soft")),
        rx.table.cell(rx.text(line.amount, weight="medium")),
        rx.table.cell(muted(line.when)),
        rx.table.cell(rx.text(line.memo, size="2")),
    )


def _detail_dialog() -> rx.Component:
    d = S.detail
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Run and ledger of " + d.request_id, overflow_wrap="anywhere"),
            rx.dialog.description(
                "The run this request started and every credit movement of that run, as the "
                "balance saw it: the hold takes the estimate at the start, then the settle gives "
                "back what was not used (the net is what the run cost) or the release returns "
                "all of it.",
                size="2",
            ),
            rx.vstack(
                rx.cond(
                    d.run_id != "",
                    rx.vstack(
                        rx.data_list.root(
                            _fact("Run", rx.code(d.run_id)),
                            _fact("Status", d.run_status),
                            _fact("Model", d.run_model),
                            _fact("Timeline (UTC)", d.run_steps),
                            rx.cond(d.run_failure != "", _fact("Failure", d.run_failure)),
                            _fact("Net cost", d.net),
                            size="2",
                        ),
                        rx.flex(
                            rx.cond(
                                d.asset_href != "",
                                rx.link(
                                    "Open the run's output", href=d.asset_href, is_external=True
                                ),
                            ),
                            rx.link("Studio history", href=S.studio_href),
                            rx.link("Report this run", href=d.report_href),
                            gap="1rem",
                            wrap="wrap",
                        ),
                        muted(
                            "Studio history lists runs by project, person, status, model and "
                            "prompt; look for the run id above."
                        ),
                        spacing="2",
                        width="100%",
                    ),
                    muted(d.run_note),
                ),
                rx.cond(
                    d.ledger.length() > 0,
                    table(
                        ["Entry", "Balance change", "When", "Memo"],
                        rx.foreach(d.ledger, _ledger_line),
                    ),
                    muted("No credit movements for this request."),
                ),
                rx.flex(
                    rx.link("Credit history in Billing", href=S.billing_href),
                    rx.dialog.close(rx.button("Close", variant="soft")),
                    justify="between",
                    align="center",
                    width="100%",
                ),
                spacing="4",
                width="100%",
                margin_top="1rem",
            ),
            # On a phone the dialog stays inside the screen; the ledger table scrolls sideways.
            width="calc(100vw - 2rem)",
            max_width="44rem",
        ),
        open=S.detail_open,
        on_open_change=S.detail_open_change,
    )


def _rows_card() -> rx.Component:
    return card(
        "Requests",
        rx.cond(
            S.rows.length() > 0,
            table(
                [
                    "Request",
                    "Route",
                    "Status",
                    "Error code",
                    "Model",
                    "Key",
                    "Run and ledger",
                    "Credits",
                    "Duration",
                ],
                rx.foreach(S.rows, _row),
            ),
            muted(
                "No API requests match. Requests made with this organization's keys appear "
                "here; create a key in Settings > API to start."
            ),
        ),
        aside=rx.button(
            rx.icon("download", size=16), "Download CSV", variant="soft", on_click=S.download_csv
        ),
        icon="scroll-text",
    )


@rx.page(
    route=routes.org_subpage_route("settings", "logs"),
    title="Logs · Settings · Creative Studio",
    on_load=ApiLogsState.load,
)
def api_logs_page() -> rx.Component:
    return app_shell(
        "settings",
        "Logs",
        "Every request to the API with this organization's keys, newest first.",
        rx.cond(
            S.org_address != "",
            rx.vstack(
                _search_card(),
                _rows_card(),
                _detail_dialog(),
                rx.link("API keys and controls", href=S.api_settings_href),
                spacing="5",
                width="100%",
            ),
            error_callout(S.error),
        ),
    )
