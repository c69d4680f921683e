"""/orgs/new: create an organization (a new account's first step, or another org later).

A double click creates one organization: the form carries a token issued when the page
renders, and a second submit with it goes to the organization the first one created.
"""

from __future__ import annotations

import reflex as rx
from sqlalchemy.exc import IntegrityError

from core import db, routes
from services import form_submissions
from services import orgs as org_service
from services.errors import DomainError
from state.org_page import form_fields
from state.session import SessionState

PURPOSE = "org_create"


class NewOrgState(rx.State):
    error: str = ""
    form_token: str = ""
    pending: bool = False

    @rx.event
    async def load(self):
        self.error = ""
        self.pending = False
        # A token only for someone who may submit the form (a signed-out tab gets nothing).
        session_state = await self.get_state(SessionState)
        with db.new_session() as session:
            signed_in = session_state._current_user(session) is not None
        self.form_token = form_submissions.form_token_new() if signed_in else ""

    @rx.event
    async def create(self, form: dict):
        self.pending = True
        yield
        try:
            outcome = await self._create(form_fields(form))
            if outcome is not None:
                yield outcome
        finally:
            self.pending = False

    async def _create(self, form: dict):
        session_state = await self.get_state(SessionState)
        token = form_submissions.form_token_clean(form.get("form_token"))
        for attempt in range(2):
            with db.new_session() as session:
                user = session_state._current_user(session)
                if user is None:
                    return rx.redirect(routes.sign_in(routes.NEW_ORG))
                try:
                    slug = form_submissions.form_submission_find(
                        session=session, user_id=user.id, purpose=PURPOSE, token=token
                    )
                    if slug is None:
                        slug = org_service.org_create(
                            session=session, owner=user, name=str(form.get("name", ""))
                        ).slug
                        form_submissions.form_submission_record(
                            session=session,
                            user_id=user.id,
                            purpose=PURPOSE,
                            token=token,
                            result=slug,
                        )
                    session.commit()
                except IntegrityError:
                    session.rollback()  # the same submit won in another process: go there
                    if attempt == 0:
                        continue
                    raise
                except DomainError as error:
                    session.rollback()
                    self.error = error.message
                    return None
            self.error = ""
            self.form_token = form_submissions.form_token_new()
            return rx.redirect(routes.org_home(slug))
        return None
