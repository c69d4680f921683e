"""/invite?token=...: what an invitation leads to, and joining the organization.

View only; the look-up and accept flow is `state/invite.py`.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import callout_box, error_callout
from creative_studio.components.limit_notice import limit_notice
from creative_studio.layout import centered_card
from state.invite import InviteState
from state.session import SessionState


def _facts() -> rx.Component:
    def fact(label: str, value) -> rx.Component:
        return rx.data_list.item(
            rx.data_list.label(label), rx.data_list.value(rx.text(value, weight="medium"))
        )

    return rx.data_list.root(
        fact("Organization", InviteState.org_name),
        fact("Role", InviteState.role),
        fact("Invited by", InviteState.invited_by),
        fact("Sent to", InviteState.invited_email),
        fact("Link expires", InviteState.expires),
        orientation=rx.breakpoints(initial="vertical", sm="horizontal"),
        size="2",
        width="100%",
    )


def _signed_out() -> rx.Component:
    return rx.vstack(
        rx.text(
            "To join, create an account with ",
            rx.text.strong(InviteState.invited_email),
            ", or sign in if you already have one.",
            size="2",
        ),
        rx.button(
            "Create an account",
            size="3",
            width="100%",
            on_click=InviteState.go_register,
        ),
        rx.button(
            "Sign in",
            size="3",
            width="100%",
            variant="soft",
            on_click=InviteState.go_sign_in,
        ),
        spacing="3",
        width="100%",
    )


def _match() -> rx.Component:
    return rx.vstack(
        rx.text(
            "You are signed in as ",
            rx.text.strong(InviteState.signed_in_email),
            ".",
            size="2",
        ),
        limit_notice(InviteState.notice, InviteState.billing_href),
        rx.button(
            "Join ",
            InviteState.org_name,
            size="3",
            width="100%",
            loading=InviteState.joining,
            on_click=InviteState.accept,
        ),
        spacing="3",
        width="100%",
    )


def _mismatch() -> rx.Component:
    return rx.vstack(
        callout_box(
            rx.text(
                "This invite was sent to ",
                rx.text.strong(InviteState.invited_email),
                ", but you are signed in as ",
                rx.text.strong(InviteState.signed_in_email),
                ". Sign out, then open the invite link again and sign in (or create an account) as ",
                rx.text.strong(InviteState.invited_email),
                ". If you want to join as ",
                InviteState.signed_in_email,
                ", ask ",
                InviteState.invited_by,
                " to invite that address instead.",
            ),
            icon="user-x",
            color_scheme="amber",
            role="alert",
            width="100%",
        ),
        rx.button(
            rx.icon("log-out", size=16),
            "Sign out",
            size="3",
            width="100%",
            variant="soft",
            on_click=SessionState.sign_out,
        ),
        spacing="3",
        width="100%",
    )


@rx.page(route=routes.INVITE, title="Invitation · Creative Studio", on_load=InviteState.load)
def invite_page() -> rx.Component:
    return centered_card(
        rx.match(
            InviteState.status,
            (
                "loading",
                rx.center(rx.spinner(size="3"), rx.text("Checking your invite…"), padding="2rem"),
            ),
            (
                "unusable",
                rx.vstack(
                    rx.heading("This invite cannot be used", size="6", as_="h1"),
                    rx.callout(
                        InviteState.message,
                        icon="link-2-off",
                        color_scheme="amber",
                        role="alert",
                        width="100%",
                    ),
                    rx.link("Go to my workspace", href=routes.INDEX, size="2"),
                    spacing="4",
                    width="100%",
                ),
            ),
            rx.vstack(
                rx.heading("Join ", InviteState.org_name, size="6", as_="h1"),
                rx.text(
                    InviteState.invited_by,
                    " invited you to work with them in Creative Studio.",
                    size="2",
                    color=rx.color("gray", 11),
                ),
                _facts(),
                error_callout(InviteState.error),
                rx.match(
                    InviteState.status,
                    ("signed_out", _signed_out()),
                    ("match", _match()),
                    ("mismatch", _mismatch()),
                    rx.fragment(),
                ),
                spacing="4",
                width="100%",
            ),
        ),
        max_width="32rem",
    )
