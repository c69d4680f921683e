"""Settings: Security (2FA, sessions, password) for the signed-in user; connections and API later."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx
from sqlmodel import Session

from core.clock import as_utc
from core.db import get_engine
from creative_studio.components.forms import error_callout, field, label_for, success_callout
from creative_studio.layout import app_shell, coming_with
from creative_studio.pages.connections import ConnectionsState, connections_section
from services import auth as auth_service
from services import totp as totp_service
from services.errors import DomainError
from state.session import SessionState


@dataclass
class SessionRow:
    id: int
    device: str
    ip_address: str
    last_seen: str
    current: bool


def _device_label(user_agent: str) -> str:
    agent = user_agent or ""
    browser = next(
        (
            name
            for key, name in (
                ("Edg/", "Edge"),
                ("Chrome/", "Chrome"),
                ("Firefox/", "Firefox"),
                ("Safari/", "Safari"),
            )
            if key in agent
        ),
        "Browser",
    )
    system = next(
        (
            name
            for key, name in (
                ("Android", "Android"),
                ("iPhone", "iPhone"),
                ("Mac OS", "macOS"),
                ("Windows", "Windows"),
                ("Linux", "Linux"),
            )
            if key in agent
        ),
        "",
    )
    return f"{browser} on {system}" if system else browser


class SecurityState(rx.State):
    totp_enabled: bool = False
    recovery_remaining: int = 0
    enrolling: bool = False
    # Shown only while enrolling (the person must copy it into an app); cleared on confirm.
    enrolment_qr_svg: str = ""
    enrolment_key: str = ""
    new_recovery_codes: list[str] = []
    sessions: list[SessionRow] = []
    error: str = ""
    notice: str = ""

    async def _user(self, session: Session):
        session_state = await self.get_state(SessionState)
        return session_state._current_user(session), session_state._session_id

    def _clear_messages(self):
        self.error = self.notice = ""

    def _refresh(self, session: Session, user, current_session_id: int | None):
        self.totp_enabled = user.totp_enabled_at is not None
        self.recovery_remaining = (
            totp_service.recovery_codes_remaining(session=session, user_id=user.id)
            if self.totp_enabled
            else 0
        )
        self.sessions = [
            SessionRow(
                id=row.id,
                device=_device_label(row.user_agent),
                ip_address=row.ip_address or "unknown",
                last_seen=as_utc(row.last_seen_at or row.activated_at).strftime(
                    "%Y-%m-%d %H:%M UTC"
                ),
                current=row.id == current_session_id,
            )
            for row in auth_service.sessions_list(session=session, user_id=user.id)
        ]

    @rx.event
    async def load(self):
        self._clear_messages()
        self.enrolling = False
        self.enrolment_qr_svg = self.enrolment_key = ""
        self.new_recovery_codes = []
        with Session(get_engine(), expire_on_commit=False) as session:
            user, current = await self._user(session)
            if user is None:
                return
            self._refresh(session, user, current)

    async def _run(self, action, success: str = ""):
        """Re-check the session, run a service call, and show its result or its error."""
        self._clear_messages()
        with Session(get_engine(), expire_on_commit=False) as session:
            user, current = await self._user(session)
            if user is None:
                self.error = "Your session has ended. Sign in again."
                return None
            try:
                result = action(session, user, current)
            except DomainError as error:
                session.rollback()
                self.error = error.message
                return None
            session.commit()
            session.refresh(user)
            self._refresh(session, user, current)
        self.notice = success
        return result

    @rx.event
    async def start_enrolment(self):
        enrolment = await self._run(
            lambda s, u, c: totp_service.totp_begin_enrolment(session=s, user_id=u.id)
        )
        if enrolment is not None:
            self.enrolling = True
            self.enrolment_qr_svg = enrolment.qr_svg
            self.enrolment_key = enrolment.secret

    @rx.event
    async def confirm_enrolment(self, form: dict):
        code = str(form.get("code", "")).replace(" ", "")
        codes = await self._run(
            lambda s, u, c: totp_service.totp_confirm_enrolment(session=s, user_id=u.id, code=code),
            "Two-factor authentication is on. Save your recovery codes now: they are shown only once.",
        )
        if codes is not None:
            self.enrolling = False
            self.enrolment_qr_svg = self.enrolment_key = ""
            self.new_recovery_codes = codes

    @rx.event
    def cancel_enrolment(self):
        self.enrolling = False
        self.enrolment_qr_svg = self.enrolment_key = ""

    @rx.event
    def hide_recovery_codes(self):
        self.new_recovery_codes = []

    @rx.event
    async def disable_totp(self, form: dict):
        password = str(form.get("password", ""))
        await self._run(
            lambda s, u, c: totp_service.totp_disable(session=s, user_id=u.id, password=password),
            "Two-factor authentication is off. Sign-in now asks only for your password.",
        )

    @rx.event
    async def reconfigure_totp(self, form: dict):
        password = str(form.get("password", ""))
        enrolment = await self._run(
            lambda s, u, c: totp_service.totp_reconfigure(
                session=s, user_id=u.id, password=password
            )
        )
        if enrolment is not None:
            self.enrolling = True
            self.enrolment_qr_svg = enrolment.qr_svg
            self.enrolment_key = enrolment.secret

    @rx.event
    async def regenerate_codes(self, form: dict):
        password = str(form.get("password", ""))
        codes = await self._run(
            lambda s, u, c: totp_service.recovery_codes_regenerate(
                session=s, user_id=u.id, password=password
            ),
            "New recovery codes created; the old ones no longer work.",
        )
        if codes is not None:
            self.new_recovery_codes = codes

    @rx.event
    async def end_session(self, session_id: int):
        await self._run(
            lambda s, u, c: auth_service.session_revoke(
                session=s, user_id=u.id, session_id=int(session_id)
            ),
            "That session was signed out.",
        )

    @rx.event
    async def end_other_sessions(self):
        await self._run(
            lambda s, u, c: auth_service.sessions_revoke_all(
                session=s, user_id=u.id, except_session_id=c
            ),
            "Every other session was signed out.",
        )

    @rx.event
    async def change_password(self, form: dict):
        new_password = str(form.get("new_password", ""))
        if new_password != str(form.get("new_password_confirm", "")):
            self._clear_messages()
            self.error = "The two new passwords differ. Type the same password in both fields."
            return
        end_others = bool(form.get("end_other_sessions"))
        await self._run(
            lambda s, u, c: auth_service.password_change(
                session=s,
                user_id=u.id,
                current_password=str(form.get("current_password", "")),
                new_password=new_password,
                end_other_sessions=end_others,
                current_session_id=c,
            ),
            "Password changed." + (" Other sessions were signed out." if end_others else ""),
        )


def _password_form(label: str, handler, button: str, color: str = "gray") -> rx.Component:
    """A password-confirmed action (2FA changes need the password again)."""
    return rx.form(
        rx.hstack(
            rx.box(
                field(
                    label,
                    "password",
                    "password",
                    "current-password",
                    field_id=f"pw-{button.lower().replace(' ', '-')}",
                    required=True,
                ),
                flex="1",
                min_width="14rem",
            ),
            rx.button(button, type="submit", variant="soft", color_scheme=color, size="3"),
            align="end",
            spacing="3",
            width="100%",
            wrap="wrap",
        ),
        on_submit=handler,
        reset_on_submit=True,
        width="100%",
    )


def _two_factor_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Two-factor authentication", size="4", as_="h2"),
                rx.spacer(),
                rx.cond(
                    SecurityState.totp_enabled,
                    rx.badge("On", color_scheme="green"),
                    rx.badge("Off", color_scheme="gray"),
                ),
                width="100%",
            ),
            rx.text(
                "A code from an authenticator app is asked after your password.",
                color=rx.color("gray", 11),
                size="2",
            ),
            rx.cond(
                SecurityState.new_recovery_codes.length() > 0,
                rx.vstack(
                    rx.text(
                        "Recovery codes: each works once if you lose your phone. Store them somewhere safe.",
                        weight="medium",
                        size="2",
                    ),
                    rx.grid(
                        rx.foreach(
                            SecurityState.new_recovery_codes, lambda c: rx.code(c, size="3")
                        ),
                        columns="2",
                        spacing="2",
                    ),
                    rx.button(
                        "I saved my recovery codes",
                        on_click=SecurityState.hide_recovery_codes,
                        variant="soft",
                    ),
                    spacing="3",
                    aria_label="Recovery codes",
                ),
            ),
            rx.cond(
                SecurityState.enrolling,
                rx.vstack(
                    rx.text(
                        "1. Scan this QR code with your authenticator app, or enter the key by hand.",
                        size="2",
                    ),
                    rx.box(
                        rx.html(SecurityState.enrolment_qr_svg),
                        aria_label="QR code for your authenticator app",
                        role="img",
                    ),
                    rx.text("Key: ", rx.code(SecurityState.enrolment_key), size="2"),
                    rx.form(
                        rx.hstack(
                            rx.box(
                                field(
                                    "2. Enter the 6-digit code it shows",
                                    "code",
                                    "text",
                                    "one-time-code",
                                    field_id="totp-code",
                                    input_mode="numeric",
                                    required=True,
                                ),
                                flex="1",
                            ),
                            rx.button("Turn on 2FA", type="submit", size="3"),
                            rx.button(
                                "Cancel",
                                type="button",
                                variant="ghost",
                                size="3",
                                on_click=SecurityState.cancel_enrolment,
                            ),
                            align="end",
                            spacing="3",
                            wrap="wrap",
                        ),
                        on_submit=SecurityState.confirm_enrolment,
                        width="100%",
                    ),
                    spacing="3",
                    width="100%",
                ),
                rx.cond(
                    SecurityState.totp_enabled,
                    rx.vstack(
                        rx.text(
                            SecurityState.recovery_remaining,
                            " unused recovery codes left.",
                            size="2",
                        ),
                        _password_form(
                            "Password (to regenerate recovery codes)",
                            SecurityState.regenerate_codes,
                            "New recovery codes",
                        ),
                        _password_form(
                            "Password (to use a new authenticator app)",
                            SecurityState.reconfigure_totp,
                            "Reconfigure",
                        ),
                        _password_form(
                            "Password (to turn 2FA off)",
                            SecurityState.disable_totp,
                            "Turn off 2FA",
                            "red",
                        ),
                        spacing="3",
                        width="100%",
                    ),
                    rx.button(
                        rx.icon("shield-check", size=16),
                        "Set up two-factor authentication",
                        on_click=SecurityState.start_enrolment,
                    ),
                ),
            ),
            spacing="4",
            width="100%",
        ),
        width="100%",
    )


def _session_row(row: SessionRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.hstack(
                rx.text(row.device),
                rx.cond(row.current, rx.badge("This device", color_scheme="iris")),
                spacing="2",
            )
        ),
        rx.table.cell(row.ip_address),
        rx.table.cell(row.last_seen),
        rx.table.cell(
            rx.cond(
                row.current,
                rx.text("—", color=rx.color("gray", 9)),
                rx.button(
                    "Sign out",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=SecurityState.end_session(row.id),
                ),
            )
        ),
    )


def _sessions_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Active sessions", size="4", as_="h2"),
                rx.spacer(),
                rx.button(
                    "Sign out everywhere else",
                    variant="soft",
                    color_scheme="red",
                    size="2",
                    on_click=SecurityState.end_other_sessions,
                ),
                width="100%",
                wrap="wrap",
            ),
            rx.box(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            *[
                                rx.table.column_header_cell(h)
                                for h in ("Device", "IP address", "Last seen", "")
                            ]
                        )
                    ),
                    rx.table.body(rx.foreach(SecurityState.sessions, _session_row)),
                    width="100%",
                ),
                overflow_x="auto",
                width="100%",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _password_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Change password", size="4", as_="h2"),
            rx.form(
                rx.vstack(
                    field(
                        "Current password",
                        "current_password",
                        "password",
                        "current-password",
                        required=True,
                    ),
                    field(
                        "New password",
                        "new_password",
                        "password",
                        "new-password",
                        required=True,
                        hint="At least 12 characters, not a common password, not your email.",
                    ),
                    field(
                        "Repeat new password",
                        "new_password_confirm",
                        "password",
                        "new-password",
                        required=True,
                    ),
                    rx.hstack(
                        rx.checkbox(
                            id="end_other_sessions", name="end_other_sessions", default_checked=True
                        ),
                        label_for(
                            "Sign out my other sessions", "end_other_sessions", weight="regular"
                        ),
                        align="center",
                    ),
                    rx.button("Change password", type="submit"),
                    spacing="3",
                    width="100%",
                    max_width="28rem",
                ),
                on_submit=SecurityState.change_password,
                reset_on_submit=True,
                width="100%",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


@rx.page(
    route="/org/[org_slug]/settings",
    title="Settings · Creative Studio",
    on_load=[SessionState.load_org, SecurityState.load, ConnectionsState.load],
)
def settings_page() -> rx.Component:
    return app_shell(
        "settings",
        "Settings",
        "Security for your account; connections and API access for the organization.",
        error_callout(SecurityState.error),
        success_callout(SecurityState.notice),
        rx.heading("Security", size="5", as_="h2"),
        _two_factor_card(),
        _sessions_card(),
        _password_card(),
        rx.heading("Organization", size="5", as_="h2"),
        connections_section(),
        coming_with(
            "API access",
            "API keys shown once and stored hashed, allowed models, and the request log.",
        ),
    )
