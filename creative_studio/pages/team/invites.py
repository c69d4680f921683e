"""Invite card (the form, or the notice when no seat is free) and the pending invites."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import field, label_for, submit_button, token_input
from creative_studio.components.limit_notice import limit_notice
from creative_studio.components.page import card, muted, row_card, table, table_or_cards
from creative_studio.pages.team.shared import messages, project_checkboxes
from state.team import INVITE_ROLE_OPTIONS, ROLE_HELP, SCOPED_EDITOR, InviteRow, TeamState


def _invite_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.flex(
                rx.box(
                    field(
                        "Email address",
                        "email",
                        "email",
                        field_id="invite-email",
                        required=True,
                        placeholder="name@company.com",
                    ),
                    flex="2",
                    min_width="14rem",
                ),
                rx.vstack(
                    label_for("Role", "invite-role"),
                    rx.select.root(
                        rx.select.trigger(id="invite-role", width="100%"),
                        rx.select.content(
                            *[
                                rx.select.item(text, value=value)
                                for value, text in INVITE_ROLE_OPTIONS
                            ]
                        ),
                        value=TeamState.invite_role,
                        on_change=TeamState.set_invite_role,
                        size="3",
                    ),
                    spacing="1",
                    flex="1",
                    min_width="14rem",
                ),
                spacing="3",
                wrap="wrap",
                width="100%",
            ),
            rx.match(
                TeamState.invite_role,
                *[(value, muted(text)) for value, text in ROLE_HELP.items()],
                rx.fragment(),
            ),
            rx.cond(
                TeamState.invite_role == SCOPED_EDITOR,
                rx.vstack(
                    rx.text("Projects this editor may use", size="2", weight="medium"),
                    project_checkboxes(
                        TeamState.invite_project_ids, TeamState.toggle_invite_project, "invite-"
                    ),
                    spacing="2",
                    width="100%",
                ),
            ),
            token_input(TeamState.form_token),
            submit_button(
                rx.icon("send", size=16),
                "Send invite",
                pending=TeamState.pending == "invite",
                size="3",
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=TeamState.send_invite,
        reset_on_submit=False,
        width="100%",
    )


def invite_card() -> rx.Component:
    return rx.cond(
        TeamState.can_manage_team,
        card(
            "Invite someone",
            muted(
                "They get an email with a link that works for 7 days. Invites count as seats "
                "until they are accepted, revoked or expire."
            ),
            messages("invite"),
            rx.cond(
                TeamState.seat_notice.limit != "",
                limit_notice(TeamState.seat_notice, TeamState.billing_href, role="status"),
                _invite_form(),
            ),
        ),
    )


def _invite_row(row: InviteRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row.email, size="2", weight="medium")),
        rx.table.cell(rx.text(row.role_label, size="2")),
        rx.table.cell(rx.badge(row.status, color_scheme="amber", variant="soft")),
        rx.table.cell(rx.text(row.expires, size="2")),
        rx.table.cell(
            rx.cond(
                TeamState.can_manage_team,
                rx.hstack(
                    rx.button(
                        "Resend",
                        size="1",
                        variant="soft",
                        aria_label="Resend invite to " + row.email,
                        on_click=TeamState.resend_invite(row.invite_id),
                    ),
                    rx.button(
                        "Revoke",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        aria_label="Revoke invite to " + row.email,
                        on_click=TeamState.revoke_invite(row.invite_id),
                    ),
                    spacing="2",
                ),
            )
        ),
        aria_label=row.email,
    )


def _invite_card(row: InviteRow) -> rx.Component:
    """A pending invite on a phone."""
    return row_card(
        rx.text(row.email, size="2", weight="medium", word_break="break-all"),
        rx.hstack(
            rx.text(row.role_label, size="1"),
            rx.badge(row.status, color_scheme="amber", variant="soft"),
            spacing="2",
            align="center",
        ),
        rx.text("Expires ", row.expires, size="1", color=rx.color("gray", 11)),
        rx.cond(
            TeamState.can_manage_team,
            rx.hstack(
                rx.button(
                    "Resend",
                    size="1",
                    variant="soft",
                    aria_label="Resend invite to " + row.email,
                    on_click=TeamState.resend_invite(row.invite_id),
                ),
                rx.button(
                    "Revoke",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    aria_label="Revoke invite to " + row.email,
                    on_click=TeamState.revoke_invite(row.invite_id),
                ),
                spacing="2",
            ),
        ),
        label=row.email,
    )


def invites_card() -> rx.Component:
    return card(
        "Pending invites",
        messages("invites"),
        rx.cond(
            TeamState.invites.length() > 0,
            table_or_cards(
                table(
                    ["Email", "Role", "Status", "Expires", ""],
                    rx.foreach(TeamState.invites, _invite_row),
                ),
                rx.foreach(TeamState.invites, _invite_card),
                "Pending invites",
            ),
            muted(
                "No pending invites. ",
                rx.cond(
                    TeamState.can_manage_team,
                    "Invite someone above; their invite shows here until they accept it.",
                    "Invites that owners and admins send show here until they are accepted.",
                ),
            ),
        ),
        muted(
            "Expired invites drop off this list and free their seat; invite the address again "
            "to send a fresh link."
        ),
    )
