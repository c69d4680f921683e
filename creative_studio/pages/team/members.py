"""Members card: who is in the organization, their role and project access, and leaving."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.page import (
    card,
    muted,
    read_only_line,
    row_card,
    table,
    table_or_cards,
)
from creative_studio.pages.team.shared import messages, project_checkboxes
from state.team import SCOPED_EDITOR, MemberRow, TeamState


def _role_picker(row: MemberRow) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(aria_label="Role of " + row.name, min_width="11rem"),
        rx.select.content(
            rx.cond(TeamState.is_owner, rx.select.item("Owner", value="owner")),
            rx.select.item("Admin", value="admin"),
            rx.select.item("Editor", value="editor"),
            rx.select.item("Editor (selected projects)", value=SCOPED_EDITOR),
            rx.select.item("Viewer", value="viewer"),
        ),
        value=row.role_choice,
        on_change=lambda value: TeamState.change_role(row.user_id, value),
        size="2",
    )


def _member_actions(row: MemberRow) -> rx.Component:
    return rx.cond(
        row.manageable,
        rx.cond(
            TeamState.confirm_remove_user_id == row.user_id,
            rx.hstack(
                rx.button(
                    "Confirm remove",
                    size="1",
                    color_scheme="red",
                    on_click=TeamState.remove_member(row.user_id),
                ),
                rx.button(
                    "Keep",
                    size="1",
                    variant="soft",
                    color_scheme="gray",
                    on_click=TeamState.cancel_remove,
                ),  # fmt: skip
                spacing="2",
            ),
            rx.button(
                "Remove",
                size="1",
                variant="soft",
                color_scheme="red",
                aria_label="Remove " + row.name,
                on_click=TeamState.ask_remove(row.user_id),
            ),
        ),
        rx.cond(row.is_self, rx.badge("You", color_scheme="iris", variant="soft")),
    )


def _member_row(row: MemberRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.vstack(
                rx.text(row.name, weight="medium", size="2"),
                rx.text(row.email, size="1", color=rx.color("gray", 11)),
                spacing="0",
            )
        ),
        rx.table.cell(
            rx.cond(row.manageable, _role_picker(row), rx.badge(row.role_label, variant="soft")),
            vertical_align="middle",
        ),
        rx.table.cell(rx.text(row.scope, size="2"), vertical_align="middle"),
        rx.table.cell(
            rx.cond(
                row.two_factor,
                rx.badge("On", color_scheme="green", variant="soft"),
                rx.badge("Off", color_scheme="gray", variant="soft"),
            ),
            vertical_align="middle",
        ),
        rx.table.cell(rx.text(row.last_active, size="2"), vertical_align="middle"),
        rx.table.cell(_member_actions(row), vertical_align="middle"),
        aria_label=row.name,
    )


def _member_card(row: MemberRow) -> rx.Component:
    """A member on a phone: the same facts and actions as the table row, stacked."""
    return row_card(
        rx.flex(
            rx.vstack(
                rx.text(row.name, weight="medium", size="2"),
                rx.text(row.email, size="1", color=rx.color("gray", 11), word_break="break-all"),
                spacing="0",
                min_width="0",
            ),
            rx.spacer(),
            rx.cond(row.manageable, _role_picker(row), rx.badge(row.role_label, variant="soft")),
            spacing="2",
            wrap="wrap",
            align="center",
            width="100%",
        ),
        rx.text("Projects: ", row.scope, size="1", color=rx.color("gray", 11)),
        rx.text("Last active: ", row.last_active, size="1", color=rx.color("gray", 11)),
        _member_actions(row),
        label=row.name,
    )


def _scope_panel() -> rx.Component:
    return rx.cond(
        TeamState.scope_user_id != 0,
        rx.card(
            rx.vstack(
                rx.text(
                    "Which projects may ",
                    rx.text.strong(TeamState.scope_user_name),
                    " see and work in?",
                    size="2",
                ),
                project_checkboxes(
                    TeamState.scope_project_ids, TeamState.toggle_scope_project, "scope-"
                ),
                rx.hstack(
                    rx.button("Save project access", on_click=TeamState.save_scope),
                    rx.button(
                        "Cancel",
                        variant="soft",
                        color_scheme="gray",
                        on_click=TeamState.cancel_scope,
                    ),  # fmt: skip
                    spacing="2",
                ),
                spacing="3",
                width="100%",
            ),
            variant="surface",
            width="100%",
        ),
    )


def _leave() -> rx.Component:
    return rx.vstack(
        rx.divider(),
        messages("leave"),
        rx.cond(
            TeamState.confirm_leave,
            rx.flex(
                muted(
                    "Leave ",
                    rx.text.strong(TeamState.org_display_name),
                    "? You lose access to its projects and assets until someone invites you again.",
                ),
                rx.hstack(
                    rx.button("Yes, leave", color_scheme="red", on_click=TeamState.leave_org),
                    rx.button(
                        "Stay",
                        variant="soft",
                        color_scheme="gray",
                        on_click=TeamState.ask_leave(False),
                    ),  # fmt: skip
                    spacing="2",
                ),
                spacing="3",
                align="center",
                wrap="wrap",
                justify="between",
                width="100%",
            ),
            rx.flex(
                muted("Leaving removes your access to this organization."),
                rx.button(
                    rx.icon("log-out", size=14),
                    "Leave organization",
                    variant="soft",
                    color_scheme="red",
                    on_click=TeamState.ask_leave(True),
                ),
                spacing="3",
                align="center",
                wrap="wrap",
                justify="between",
                width="100%",
            ),
        ),
        spacing="3",
        width="100%",
    )


def members_card() -> rx.Component:
    return card(
        "Members",
        rx.cond(
            ~TeamState.can_manage_team,
            read_only_line(
                "Only owners and admins can invite, remove or change members. Ask ",
                TeamState.managers,
                ".",
            ),
        ),
        messages("members"),
        _scope_panel(),
        table_or_cards(
            table(
                ["Member", "Role", "Projects", "2FA", "Last active", ""],
                rx.foreach(TeamState.members, _member_row),
            ),
            rx.foreach(TeamState.members, _member_card),
            "Members",
        ),
        # An operator looking at a customer's team is not a member: nothing to leave.
        rx.cond(TeamState.is_member, _leave()),
        aside=rx.badge(TeamState.seats_line, size="2", variant="surface"),
    )
