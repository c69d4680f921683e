"""/operator: find a customer, approve adjustments, control models. State: state/operator.py."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.page import card, muted, status_badge, table
from creative_studio.pages.operator import customer  # noqa: F401  (registers the page)
from creative_studio.pages.operator.shared import operator_frame, reason_field
from state.operator import HitRow, ModelRow, OperatorState, PendingRow
from state.session import SessionState


def _search_card() -> rx.Component:
    return card(
        "Find a customer",
        rx.form(
            rx.flex(
                rx.vstack(
                    rx.el.label(
                        rx.text("Slug, member email or Stripe customer id", size="2"),
                        html_for="customer-query",
                    ),
                    rx.input(
                        id="customer-query",
                        name="query",
                        default_value=OperatorState.query,
                        placeholder="acme, alice@acme.com, cus_…",
                        max_length=320,
                        width="100%",
                    ),
                    spacing="1",
                    flex="1",
                    min_width="14rem",
                ),
                rx.button("Search", type="submit"),
                spacing="3",
                align="end",
                wrap="wrap",
                width="100%",
            ),
            on_submit=OperatorState.search,
            width="100%",
        ),
        rx.cond(
            OperatorState.hits.length() > 0,
            table(
                ["Customer", "Name", "Plan", "Matched"],
                rx.foreach(OperatorState.hits, _hit_row),
            ),
        ),
        icon="search",
    )


def _hit_row(hit: HitRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(hit.slug, href=hit.href)),
        rx.table.cell(hit.name),
        rx.table.cell(hit.plan),
        rx.table.cell(rx.text(hit.matched, size="2")),
    )


def _pending_row(row: PendingRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row.org_slug, href=row.href)),
        rx.table.cell(row.amount),
        rx.table.cell(rx.text(row.reason, size="2")),
        rx.table.cell(row.requested_by),
        rx.table.cell(rx.text(row.created, size="1")),
        rx.table.cell(
            rx.hstack(
                rx.button(
                    "Approve",
                    size="1",
                    on_click=OperatorState.approve(row.approval_id),
                    aria_label="Approve adjustment of " + row.amount + " for " + row.org_slug,
                ),
                rx.button(
                    "Reject",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=OperatorState.reject(row.approval_id),
                    aria_label="Reject adjustment of " + row.amount + " for " + row.org_slug,
                ),
                spacing="2",
            )
        ),
    )


def _approvals_card() -> rx.Component:
    return card(
        "Adjustments waiting for a second operator",
        muted(
            "Adjustments above ",
            OperatorState.threshold,
            " credits need another operator; the requester cannot approve their own.",
        ),
        rx.cond(
            OperatorState.pending.length() > 0,
            table(
                ["Customer", "Credits", "Reason", "Requested by", "When", ""],
                rx.foreach(OperatorState.pending, _pending_row),
            ),
            muted("Nothing is waiting."),
        ),
        icon="users",
    )


def _model_row(model: ModelRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(model.name), rx.code(model.key, size="1")),
        rx.table.cell(model.modality),
        rx.table.cell(
            status_badge(model.status, size="1"),
            rx.text(model.status_reason, size="1", color=rx.color("gray", 11)),
        ),
        rx.table.cell(rx.cond(model.backup != "", rx.code(model.backup, size="1"), "—")),
        rx.table.cell(model.orgs_affected),
        rx.table.cell(
            rx.flex(
                rx.button(
                    "Disable",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=OperatorState.open_model_change(model.key, "disable"),
                    aria_label="Disable " + model.name,
                ),
                rx.button(
                    "Swap to backup",
                    size="1",
                    variant="soft",
                    on_click=OperatorState.open_model_change(model.key, "swap"),
                    aria_label="Swap " + model.name + " to its backup",
                ),
                rx.button(
                    "Enable",
                    size="1",
                    variant="soft",
                    color_scheme="green",
                    on_click=OperatorState.open_model_change(model.key, "enable"),
                    aria_label="Enable " + model.name,
                ),
                spacing="2",
                wrap="wrap",
            )
        ),
    )


def _models_card() -> rx.Component:
    return card(
        "Model controls",
        muted(
            "Changes apply to every organization, show as a banner in Creative Studio and on the "
            "status page, and are written to the audit log. Affected = organizations whose plan "
            "may use the model."
        ),
        rx.cond(
            OperatorState.model_change != "",
            rx.form(
                rx.vstack(
                    rx.text(
                        "Change: ",
                        rx.text.strong(OperatorState.model_change),
                        " ",
                        rx.code(OperatorState.model_key),
                    ),
                    reason_field("model-reason", "Reason for the change"),
                    rx.hstack(
                        rx.button("Apply change", type="submit"),
                        rx.button(
                            "Cancel",
                            type="button",
                            variant="soft",
                            on_click=OperatorState.cancel_model_change,
                        ),
                        spacing="2",
                    ),
                    spacing="2",
                    width="100%",
                ),
                on_submit=OperatorState.change_model,
                reset_on_submit=True,
                width="100%",
            ),
        ),
        table(
            ["Model", "Modality", "Status", "Backup", "Affected", ""],
            rx.foreach(OperatorState.models, _model_row),
        ),
        icon="cpu",
    )


@rx.page(
    route=routes.OPERATOR_HOME,
    title="Operator console · Creative Studio",
    on_load=[SessionState.require_signed_in, OperatorState.load],
)
def operator_home_page() -> rx.Component:
    return operator_frame(
        OperatorState,
        "Operator console",
        "Customers, refunds and adjustments, run recovery and model controls.",
        _search_card(),
        _approvals_card(),
        _models_card(),
    )
