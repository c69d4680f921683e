"""Create an account; a verification link goes to the address (resend offered here).

The page answers the same whether the address is free or already has an account (its owner
then gets a mail instead, see `services.auth.user_register`): the form cannot be used to find
out who has an account.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import reflex as rx
from sqlalchemy.exc import IntegrityError

from core import db, routes
from core.settings import get_settings
from services import auth as auth_service
from services import form_submissions
from services import invites as invite_service
from services.errors import DomainError
from state.org_page import MAX_EMAIL_INPUT, bounded, form_fields


class RegisterState(rx.State):
    # Where to go after signing in (e.g. back to /invite?token=...): backend-only.
    _next_path: str = ""
    verified_by_invite: bool = False
    error: str = ""
    error_field: str = ""
    registered_email: str = ""
    notice: str = ""
    locked_email: str = ""  # pre-filled and locked when arriving from an invitation
    form_token: str = ""  # a double click registers once and shows the first answer
    pending: bool = False

    @rx.event
    def load(self):
        self.error = self.error_field = self.notice = ""
        self.registered_email = ""
        self.locked_email = (
            bounded(self.router.url.query_parameters.get("email", ""), MAX_EMAIL_INPUT)
            .strip()
            .lower()
        )
        next_path = self.router.url.query_parameters.get("next", "")
        self._next_path = next_path if routes.is_safe_next(next_path) else ""
        self.verified_by_invite = False
        self.pending = False
        self.form_token = form_submissions.form_token_new()

    def _invite_token(self) -> str:
        """The token of an invite this registration came from ("" otherwise)."""
        path, _, query = self._next_path.partition("?")
        if path != routes.INVITE:
            return ""
        return parse_qs(query).get("token", [""])[0]

    @rx.event
    def submit(self, form: dict):
        self.pending = True
        yield
        try:
            self._submit(form_fields(form))
        finally:
            self.pending = False

    def _submit(self, form: dict) -> None:
        email = self.locked_email or bounded(form.get("email", ""), MAX_EMAIL_INPUT)
        if str(form.get("password", "")) != str(form.get("password_confirm", "")):
            self.error_field = "password_confirm"
            self.error = "The two passwords differ. Type the same password in both fields."
            return
        token = form_submissions.form_token_clean(form.get("form_token"))
        with db.new_session() as session:
            earlier = form_submissions.form_submission_find(
                session=session, user_id=None, purpose="register", token=token
            )
            if earlier is not None:  # a second click: the first one's answer
                self.error = self.error_field = ""
                self.registered_email = earlier
                return
            try:
                user = auth_service.user_register(
                    session=session,
                    email=email,
                    password=str(form.get("password", "")),
                    name=str(form.get("name", "")),
                    base_url=get_settings().app_base_url,
                )
            except DomainError as error:
                self.error, self.error_field = error.message, str(error.details.get("field") or "")
                return
            invite_token = self._invite_token()
            if (
                user is not None
                and invite_token
                and invite_service.invite_confirms_email(
                    session=session, token=invite_token, user=user
                )
            ):
                self.verified_by_invite = True
            try:
                form_submissions.form_submission_record(
                    session=session,
                    user_id=None,
                    purpose="register",
                    token=token,
                    result=email.strip().lower(),
                )
                session.commit()
            except IntegrityError:
                session.rollback()  # the same submit was answered meanwhile
        self.error = self.error_field = ""
        self.form_token = form_submissions.form_token_new()
        # The same answer for a new account and an address that already had one.
        self.registered_email = email.strip().lower()

    @rx.event
    def continue_to_sign_in(self):
        return rx.redirect(routes.sign_in(self._next_path or None))

    @rx.event
    def resend(self):
        if not self.registered_email:
            return
        with db.session_scope() as session:
            auth_service.verification_resend(
                session=session, email=self.registered_email, base_url=get_settings().app_base_url
            )
        self.notice = f"We sent a new verification link to {self.registered_email}. Older links no longer work."
