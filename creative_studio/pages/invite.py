"""/invite?token=...: what an invitation leads to, and joining the organization.

The token comes from the URL on every event and stays in a backend var; the page state holds
only what the invite says (org, role, inviter, expiry), never the token or its hash.
"""

from __future__ import annotations

from urllib.parse import urlencode

import reflex as rx
from sqlmodel import Session

from core.db import get_engine
from core import routes
from creative_studio.components.forms import error_callout
from creative_studio.components.limit_notice import limit_notice
from creative_studio.layout import centered_card
from models import Organization
from services import invites as invite_service
from services.errors import DomainError, PlanLimitReached
from state.notices import LimitNotice, notice_from_error
from state.session import SessionState


def _role_text(role: str, projects: tuple[str, ...]) -> str:
    if projects:
        return f"{role.capitalize()} in {', '.join(projects)}"
    return role.capitalize()


class InviteState(rx.State):
    _token: str = ""
    # "loading" | "unusable" | "signed_out" | "match" | "mismatch"
    status: str = "loading"
    message: str = ""  # why the link cannot be used (from the service: says who can reissue)
    error: str = ""
    org_name: str = ""
    org_slug: str = ""
    role: str = ""
    invited_by: str = ""
    invited_email: str = ""
    expires: str = ""
    signed_in_email: str = ""
    joining: bool = False
    notice: LimitNotice = LimitNotice()

    def _invite_path(self) -> str:
        return f"{routes.INVITE}?{urlencode({'token': self._token})}"

    @rx.event
    async def load(self):
        self._token = self.router.url.query_parameters.get("token", "").strip()
        self.status, self.message, self.error = "loading", "", ""
        self.joining = False
        self.notice = LimitNotice()
        session_state = await self.get_state(SessionState)
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                view = invite_service.invite_lookup(session=session, token=self._token)
            except DomainError as error:
                self.status, self.message = "unusable", error.message
                return
            self.org_name, self.org_slug = view.org_name, view.org_slug
            self.role = _role_text(view.role, view.project_names)
            self.invited_by = view.invited_by_name or f"An admin of {view.org_name}"
            self.invited_email = view.email
            self.expires = f"{view.expires_at:%Y-%m-%d %H:%M} UTC"
            user = session_state._current_user(session)
            if user is None:
                self.signed_in_email = ""
                self.status = "signed_out"
                return
            session_state._fill_user(session, user)
            self.signed_in_email = user.email
            self.status = "match" if user.email.strip().lower() == view.email else "mismatch"

    @rx.event
    async def accept(self):
        if self.joining:
            return
        self.joining = True
        self.error = ""
        session_state = await self.get_state(SessionState)
        with Session(get_engine(), expire_on_commit=False) as session:
            user = session_state._current_user(session)
            if user is None:
                self.joining = False
                return rx.redirect(routes.sign_in(self._invite_path()))
            try:
                membership = invite_service.invite_accept(
                    session=session, token=self._token, user=user
                )
                session.commit()
            except PlanLimitReached as error:
                session.rollback()
                self.notice = notice_from_error(session=session, error=error)
                self.joining = False
                return
            except DomainError as error:
                session.rollback()
                self.joining = False
                if error.code == "invite_email_mismatch":
                    self.status = "mismatch"
                    self.signed_in_email = user.email
                elif error.code.startswith("invite_"):
                    self.status, self.message = "unusable", error.message
                else:
                    self.error = error.message
                return
            slug = session.get(Organization, membership.org_id).slug
        return rx.redirect(routes.org_home(slug))

    @rx.event
    def go_register(self):
        return rx.redirect(routes.register(self.invited_email, self._invite_path()))

    @rx.event
    def go_sign_in(self):
        return rx.redirect(routes.sign_in(self._invite_path()))


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
        limit_notice(InviteState.notice, "/org/" + InviteState.org_slug + "/billing"),
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
        rx.callout(
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
