"""Settings > Security: two-factor authentication, signed-in sessions and the password.

Everything here acts on the signed-in person, not on the organization; the page lives at
/org/<slug>/settings, so the org-page skeleton still decides who acts (anyone who may see the
organization) and the work uses `acting.user`.

Changing the password and turning 2FA on always sign out every other session (there is no
opt-out); this tab's session stays. The session list says where each session was created
(device, IP address) and when.
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx
from sqlmodel import Session

from core.clock import as_utc
from services import auth as auth_service
from services import policy
from services import totp as totp_service
from state.org_page import (
    MAX_PASSWORD_INPUT,
    Acting,
    OrgPageState,
    bounded,
    browser_id,
    form_fields,
)
from state.session import SessionState

Action = policy.Action


@dataclass
class SessionRow:
    id: int
    device: str
    ip_address: str
    created: str
    last_seen: str
    current: bool


_TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


_BROWSERS = (
    ("Edg/", "Edge"),
    ("Chrome/", "Chrome"),
    ("Firefox/", "Firefox"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("Mac OS", "macOS"),
    ("Windows", "Windows"),
    ("Linux", "Linux"),
)


def device_label(user_agent: str) -> str:
    """ "Chrome on macOS" from a User-Agent header; "Browser" when nothing is recognised."""
    agent = user_agent or ""
    browser = next((name for key, name in _BROWSERS if key in agent), "Browser")
    system = next((name for key, name in _SYSTEMS if key in agent), "")
    return f"{browser} on {system}" if system else browser


PASSWORD_CHANGED_MESSAGE = (
    "Password changed. Every other device and browser was signed out; you stay signed in here."
)


def _password(form: dict, name: str = "password") -> str:
    """A field of a submitted form; a forged non-form from the browser reads as empty."""
    return bounded(form_fields(form).get(name, ""), MAX_PASSWORD_INPUT)


class SecurityState(OrgPageState, rx.State):
    totp_enabled: bool = False
    recovery_remaining: int = 0
    enrolling: bool = False
    # Shown only while enrolling (the person must copy it into an app); cleared on confirm.
    enrolment_qr_svg: str = ""
    enrolment_key: str = ""
    new_recovery_codes: list[str] = []
    sessions: list[SessionRow] = []

    # The signed-in session of this tab ("This device", and kept by "sign out everywhere else").
    _current_session_id: int | None = None

    # --- the skeleton's hooks -----------------------------------------------------------------

    async def _acting(
        self,
        session: Session,
        action: policy.Action,
        *,
        project_id: int | None = None,
        recent: bool = False,
    ) -> Acting:
        acting = await super()._acting(session, action, project_id=project_id, recent=recent)
        self._current_session_id = (await self.get_state(SessionState))._session_id
        return acting

    def _refresh(self, acting: Acting) -> None:
        user = acting.user
        self.totp_enabled = user.totp_enabled_at is not None
        self.recovery_remaining = (
            totp_service.recovery_codes_remaining(session=acting.session, user_id=user.id)
            if self.totp_enabled
            else 0
        )
        rows = [
            SessionRow(
                id=row.id,
                device=device_label(row.user_agent),
                ip_address=row.ip_address or "unknown",
                created=as_utc(row.created_at).strftime(_TIME_FORMAT),
                last_seen=as_utc(row.last_seen_at or row.activated_at).strftime(_TIME_FORMAT),
                current=row.id == self._current_session_id,
            )
            for row in auth_service.sessions_list(session=acting.session, user_id=user.id)
        ]
        # "This device" first, then the others as listed (most recent first).
        self.sessions = sorted(rows, key=lambda row: not row.current)

    def _show_enrolment(self, enrolment: totp_service.TotpEnrolment) -> None:
        self.enrolling = True
        self.enrolment_qr_svg = enrolment.qr_svg
        self.enrolment_key = enrolment.secret

    def _hide_enrolment(self) -> None:
        self.enrolling = False
        self.enrolment_qr_svg = self.enrolment_key = ""

    # --- events -------------------------------------------------------------------------------

    @rx.event
    async def load(self):
        self._hide_enrolment()
        self.new_recovery_codes = []
        await self._load()

    @rx.event
    async def start_enrolment(self):
        enrolment = await self._act(
            Action.org_view,
            lambda a: totp_service.totp_begin_enrolment(session=a.session, user_id=a.user.id),
        )
        if enrolment is not None:
            self._show_enrolment(enrolment)

    @rx.event
    async def confirm_enrolment(self, form: dict):
        code = _password(form, "code").replace(" ", "")
        codes = await self._act(
            Action.org_view,
            lambda a: totp_service.totp_confirm_enrolment(
                session=a.session,
                user_id=a.user.id,
                code=code,
                current_session_id=self._current_session_id,
            ),
            success="Two-factor authentication is on. Every other device and browser was signed "
            "out; you stay signed in here. Save your recovery codes now: they are shown only once.",
        )
        if codes is not None:
            self._hide_enrolment()
            self.new_recovery_codes = codes

    @rx.event
    def cancel_enrolment(self):
        self._hide_enrolment()

    @rx.event
    def hide_recovery_codes(self):
        self.new_recovery_codes = []

    @rx.event
    async def disable_totp(self, form: dict):
        password = _password(form)
        await self._act(
            Action.org_view,
            lambda a: totp_service.totp_disable(
                session=a.session, user_id=a.user.id, password=password
            ),
            success="Two-factor authentication is off. Sign-in now asks only for your password.",
        )

    @rx.event
    async def reconfigure_totp(self, form: dict):
        password = _password(form)
        enrolment = await self._act(
            Action.org_view,
            lambda a: totp_service.totp_reconfigure(
                session=a.session, user_id=a.user.id, password=password
            ),
        )
        if enrolment is not None:
            self._show_enrolment(enrolment)

    @rx.event
    async def regenerate_codes(self, form: dict):
        password = _password(form)
        codes = await self._act(
            Action.org_view,
            lambda a: totp_service.recovery_codes_regenerate(
                session=a.session, user_id=a.user.id, password=password
            ),
            success="New recovery codes created; the old ones no longer work.",
        )
        if codes is not None:
            self.new_recovery_codes = codes

    @rx.event
    async def end_session(self, session_id: str):
        await self._act(
            Action.org_view,
            lambda a: auth_service.session_revoke(
                session=a.session, user_id=a.user.id, session_id=browser_id(session_id)
            ),
            success="That session was signed out.",
        )

    @rx.event
    async def end_other_sessions(self):
        await self._act(
            Action.org_view,
            lambda a: auth_service.sessions_revoke_all(
                session=a.session, user_id=a.user.id, except_session_id=self._current_session_id
            ),
            success="Every other session was signed out.",
        )

    @rx.event
    async def change_password(self, form: dict):
        new_password = _password(form, "new_password")
        if new_password != _password(form, "new_password_confirm"):
            self._clear_messages()
            self.error = "The two new passwords differ. Type the same password in both fields."
            return
        await self._act(
            Action.org_view,
            lambda a: auth_service.password_change(
                session=a.session,
                user_id=a.user.id,
                current_password=_password(form, "current_password"),
                new_password=new_password,
                current_session_id=self._current_session_id,
            ),
            success=PASSWORD_CHANGED_MESSAGE,
        )
