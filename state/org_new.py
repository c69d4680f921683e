"""/orgs/new: create an organization (a new account's first step, or another org later)."""

from __future__ import annotations

import reflex as rx

from core import db, routes
from services import orgs as org_service
from services.errors import DomainError, PlanLimitReached
from state.org_page import form_fields
from state.session import SessionState


class NewOrgState(rx.State):
    error: str = ""
    limit_hit: bool = False

    @rx.event
    def load(self):
        self.error = ""
        self.limit_hit = False

    @rx.event
    async def create(self, form: dict):
        session_state = await self.get_state(SessionState)
        with db.new_session() as session:
            user = session_state._current_user(session)
            if user is None:
                return rx.redirect(routes.sign_in(routes.NEW_ORG))
            try:
                org = org_service.org_create(
                    session=session, owner=user, name=str(form_fields(form).get("name", ""))
                )
                session.commit()
            except DomainError as error:
                session.rollback()
                self.error = error.message
                self.limit_hit = isinstance(error, PlanLimitReached)
                return
        return rx.redirect(routes.org_home(org.slug))
