"""Organization card: its name and address, and (for the owner) transfer and deletion."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import field, label_for, submit_button, token_input
from creative_studio.components.page import card, muted, read_only_line
from creative_studio.pages.team.shared import messages
from state.team import TeamState


def _inline_form(
    label: str,
    name: str,
    field_id: str,
    button: str,
    handler,
    color: str = "",
    hint: str = "",
    **props,
):
    # The hint goes below the row so the button lines up with the input, not the hint.
    return rx.form(
        rx.flex(
            rx.box(
                field(label, name, field_id=field_id, required=True, **props),
                flex="1",
                min_width="14rem",
            ),
            rx.button(
                button,
                type="submit",
                size="3",
                variant="soft",
                **({"color_scheme": color} if color else {}),
            ),  # fmt: skip
            spacing="3",
            align="end",
            wrap="wrap",
            width="100%",
        ),
        rx.text(hint, size="1", color=rx.color("gray", 10), margin_top="0.25rem")
        if hint
        else rx.fragment(),
        on_submit=handler,
        reset_on_submit=False,
        width="100%",
    )


def organization_card() -> rx.Component:
    return card(
        "Organization",
        rx.cond(
            ~TeamState.can_manage_org,
            read_only_line(
                "Only owners and admins can rename the organization or change its address, and "
                "only the owner can transfer or delete it. Ask ",
                TeamState.owners,
                ".",
            ),
        ),
        messages("org"),
        rx.cond(
            TeamState.can_manage_org,
            rx.vstack(
                _inline_form(
                    "Organization name",
                    "name",
                    "org-name",
                    "Rename",
                    TeamState.rename_org,
                    default_value=TeamState.org_display_name,
                    autocomplete="organization",
                ),
                _inline_form(
                    "Address (slug)",
                    "slug",
                    "org-slug",
                    "Change address",
                    TeamState.change_slug,
                    default_value=TeamState.org_address,
                    hint="Changing it changes every link: /org/<address>/... You confirm first; "
                    "old links then lead to the new address for 90 days and stop working after "
                    "that. The old address is never given to another organization.",
                ),
                _slug_confirmation(),
                spacing="4",
                width="100%",
            ),
        ),
        rx.cond(
            TeamState.is_owner,
            rx.vstack(
                rx.divider(),
                rx.heading("Transfer ownership", size="3", as_="h3"),
                muted(
                    "The member you choose becomes the owner (billing included); you become an admin."
                ),
                rx.cond(
                    TeamState.transfer_choices.length() > 0,
                    rx.flex(
                        rx.vstack(
                            label_for("New owner", "transfer-owner"),
                            rx.select.root(
                                rx.select.trigger(
                                    id="transfer-owner",
                                    placeholder="Choose a member",
                                    width="100%",
                                ),
                                rx.select.content(
                                    rx.foreach(
                                        TeamState.transfer_choices,
                                        lambda c: rx.select.item(c.label, value=c.value),
                                    )
                                ),
                                value=TeamState.transfer_user_id,
                                on_change=TeamState.set_transfer_user,
                                size="3",
                            ),
                            spacing="1",
                            flex="1",
                            min_width="14rem",
                        ),
                        rx.button(
                            "Transfer ownership",
                            size="3",
                            variant="soft",
                            color_scheme="amber",
                            on_click=TeamState.ask_transfer(True),
                        ),
                        spacing="3",
                        align="end",
                        wrap="wrap",
                        width="100%",
                    ),
                    muted("Invite someone first: ownership can only go to an existing member."),
                ),
                _transfer_step_up(),
                rx.divider(),
                rx.heading("Delete organization", size="3", as_="h3"),
                muted(
                    "Deleting removes access for every member and withdraws pending invites. "
                    "To confirm, type the address ",
                    rx.code(TeamState.org_address),
                    ".",
                ),
                _inline_form(
                    "Type the address to confirm",
                    "confirm_slug",
                    "delete-confirm",
                    "Delete organization",
                    TeamState.delete_org,
                    color="red",
                ),
                spacing="3",
                width="100%",
            ),
        ),
    )


def _slug_confirmation() -> rx.Component:
    """Second step of an address change: say what happens to the old one, then act."""
    return rx.cond(
        TeamState.slug_to_confirm != "",
        rx.callout.root(
            rx.vstack(
                rx.text(
                    "Change the address from /org/",
                    TeamState.org_address,
                    " to /org/",
                    TeamState.slug_to_confirm,
                    "?",
                    weight="bold",
                    size="2",
                ),
                rx.text(
                    "The old address stops working as the organization's address: links and "
                    "bookmarks to it lead to the new one for 90 days, then stop working. "
                    "Everyone in the organization should update saved links.",
                    size="2",
                ),
                rx.hstack(
                    rx.button(
                        "Yes, change the address",
                        color_scheme="amber",
                        loading=TeamState.pending == "slug",
                        on_click=TeamState.confirm_slug_change(TeamState.form_token),
                    ),
                    rx.button(
                        "Keep the current address",
                        variant="soft",
                        color_scheme="gray",
                        on_click=TeamState.cancel_slug_change,
                    ),
                    spacing="2",
                    wrap="wrap",
                ),
                spacing="2",
                width="100%",
            ),
            color_scheme="amber",
            role="alertdialog",
            aria_label="Confirm the new address",
            width="100%",
        ),
    )


def _transfer_step_up() -> rx.Component:
    """Transfer ownership only after naming what the owner loses and re-entering the password."""
    return rx.cond(
        TeamState.confirm_transfer,
        rx.callout.root(
            rx.form(
                rx.vstack(
                    rx.text("Confirm the ownership transfer", weight="bold", size="2"),
                    rx.text(
                        "You will become an admin and lose what only the owner can do: change "
                        "the plan, buy credits and manage billing, transfer ownership, and delete "
                        "the organization. Only the new owner can give ownership back.",
                        size="2",
                    ),
                    field(
                        "Your password",
                        "password",
                        "password",
                        autocomplete="current-password",
                        field_id="transfer-password",
                        required=True,
                    ),
                    rx.cond(
                        TeamState.needs_totp,
                        field(
                            "Two-factor code",
                            "totp_code",
                            autocomplete="one-time-code",
                            field_id="transfer-totp",
                            hint="The 6-digit code from your authenticator app, or a recovery "
                            "code.",
                            max_length=64,
                        ),
                    ),
                    token_input(TeamState.form_token),
                    rx.hstack(
                        submit_button(
                            "Transfer ownership now",
                            pending=TeamState.pending == "transfer",
                            color_scheme="amber",
                        ),
                        rx.button(
                            "Cancel",
                            type="button",
                            variant="soft",
                            color_scheme="gray",
                            on_click=TeamState.ask_transfer(False),
                        ),
                        spacing="2",
                        wrap="wrap",
                    ),
                    spacing="3",
                    width="100%",
                ),
                on_submit=TeamState.transfer_ownership,
                reset_on_submit=True,
                width="100%",
            ),
            color_scheme="amber",
            width="100%",
        ),
    )
