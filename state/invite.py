"""/invite?token=...: what an invitation leads to, and joining the organization.

Not an org page (the person is not a member yet): it reads who is signed in through
SessionState and runs its own two steps, look up and accept. The token comes from the URL on
every load and stays in a backend var; the page state holds only what the invite says (org,
role, inviter, expiry), never the token or its hash.
"""

from __future__ import annotations

from urllib.parse import urlencode

import reflex as rx

from core import db, routes
from models import Organization
from services import invites as invite_service
from services.error_codes import Code
from services.errors import DomainError, PlanLimitReached
from state.notices import LimitNotice, notice_from_error
from state.session import SessionState

# Longest token accepted from the URL (real tokens are far shorter).
TOKEN_MAX_CHARS = 200


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
    notice: LimitNotice = rx.field(default_factory=LimitNotice)

    @rx.var
    def billing_href(self) -> str:
        return routes.org_billing(self.org_slug) if self.org_slug else ""

    def _invite_path(self) -> str:
        return f"{routes.INVITE}?{urlencode({'token': self._token})}"

    @rx.event
    async def load(self):
        token = self.router.url.query_parameters.get("token", "")
        self._token = str(token or "").strip()[:TOKEN_MAX_CHARS]
        self.status, self.message, self.error = "loading", "", ""
        self.joining = False
        self.notice = LimitNotice()
        session_state = await self.get_state(SessionState)
        with db.new_session() as session:  # reads only
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
        with db.new_session() as session:
            user = session_state._current_user(session)
            if user is None:
                self.joining = False
                return rx.redirect(routes.sign_in(self._invite_path()))
            try:
                membership = invite_service.invite_accept(
                    session=session, token=self._token, user=user
                )
                slug = session.get(Organization, membership.org_id).slug
                session.commit()
            except PlanLimitReached as error:
                session.rollback()
                self.notice = notice_from_error(session=session, error=error)
                self.joining = False
                return
            except DomainError as error:
                session.rollback()
                self.joining = False
                if error.code == Code.invite_email_mismatch:
                    self.status = "mismatch"
                    self.signed_in_email = user.email
                elif error.code.startswith("invite_"):
                    self.status, self.message = "unusable", error.message
                else:
                    self.error = error.message
                return
        return rx.redirect(routes.org_home(slug))

    @rx.event
    def go_register(self):
        return rx.redirect(routes.register(self.invited_email, self._invite_path()))

    @rx.event
    def go_sign_in(self):
        return rx.redirect(routes.sign_in(self._invite_path()))
