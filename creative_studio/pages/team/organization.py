"""Organization card: its name and address, and (for the owner) transfer and deletion."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import field, label_for
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
            gap="3",
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
                    hint="Changing it changes every link: /org/<address>/... Old links and "
                    "bookmarks stop working, and the old address is not reused.",
                ),
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
                            on_click=TeamState.transfer_ownership,
                        ),
                        gap="3",
                        align="end",
                        wrap="wrap",
                        width="100%",
                    ),
                    muted("Invite someone first: ownership can only go to an existing member."),
                ),
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
