"""/org/<slug>/audit: the organization's audit log. State: state/org_audit.py."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.page import card, muted, table
from creative_studio.layout import app_shell, explanation_card
from state.org_audit import AuditEntryRow, OrgAuditState

S = OrgAuditState


def _field(label: str, field_id: str, name: str, value, **props) -> rx.Component:
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium"), html_for=field_id),
        rx.input(id=field_id, name=name, default_value=value, **props),
        spacing="1",
        min_width="10rem",
    )


def _filters() -> rx.Component:
    return rx.form(
        rx.flex(
            _field("Actor (name or email)", "audit-actor", "actor", S.actor_filter, max_length=120),
            _field(
                "Action starts with",
                "audit-action",
                "action",
                S.action_filter,
                placeholder="credits.",
                max_length=120,
            ),
            _field("From (UTC)", "audit-since", "since", S.since, type="date"),
            _field("To (UTC)", "audit-until", "until", S.until, type="date"),
            rx.hstack(
                rx.button("Filter", type="submit"),
                rx.button("Clear", type="button", variant="soft", on_click=S.clear_filters),
                spacing="2",
            ),
            spacing="3",
            align="end",
            wrap="wrap",
            width="100%",
        ),
        on_submit=S.apply_filters,
        width="100%",
    )


def _row(row: AuditEntryRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row.when, size="1")),
        rx.table.cell(row.actor),
        rx.table.cell(rx.code(row.action, size="1")),
        rx.table.cell(rx.text(row.target, size="1")),
        rx.table.cell(rx.text(row.details, size="1")),
    )


def _content() -> rx.Component:
    return rx.vstack(
        rx.cond(
            S.error != "",
            rx.callout(S.error, icon="triangle-alert", color_scheme="red", role="alert"),
        ),
        card(
            "Integrity",
            muted(
                "Each entry carries a hash of its content and of the entry before it, so a "
                "changed or deleted entry is detected."
            ),
            rx.button("Verify integrity", on_click=S.verify, variant="soft"),
            rx.cond(
                S.verify_message != "",
                rx.callout(
                    S.verify_message,
                    icon=rx.cond(S.verify_ok, "shield-check", "shield-alert"),
                    color_scheme=rx.cond(S.verify_ok, "green", "red"),
                    role="status",
                ),
            ),
            icon="shield-check",
            spacing="3",
        ),
        card(
            "Entries",
            _filters(),
            rx.button("Download CSV", on_click=S.export_csv, variant="soft", size="2"),
            rx.cond(
                S.entries.length() > 0,
                table(
                    ["Time (UTC)", "Who", "Action", "Target", "Details"],
                    rx.foreach(S.entries, _row),
                ),
                muted("No entries match. Clear the filters to see everything."),
            ),
            icon="scroll-text",
            spacing="3",
        ),
        spacing="4",
        width="100%",
    )


@rx.page(
    route=f"/org/[{routes.ORG_ROUTE_ARG}]/audit",
    title="Audit log · Creative Studio",
    on_load=OrgAuditState.load,
)
def org_audit_page() -> rx.Component:
    return app_shell(
        "audit",
        "Audit log",
        "Every privileged action in this organization: who, what, when (UTC).",
        rx.cond(
            S.loaded,
            _content(),
            explanation_card(
                "The audit log is for owners and admins",
                rx.cond(
                    S.error != "", S.error, "Ask an owner or admin if you need to check a change."
                ),
            ),
        ),
    )
