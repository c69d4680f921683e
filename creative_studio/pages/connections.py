"""Settings > Connections: the org's OAuth links to social and ad platforms.

`connections_section()` is placed on the Settings page; `ConnectionsState.load` is in its
on_load. Connecting goes through the backend routes in creative_studio/api/connections_routes.py
(the browser leaves for the platform's consent screen and comes back to Settings with a
message code in the URL). No token ever reaches this state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

import reflex as rx
from sqlmodel import Session

from core.db import get_engine
from creative_studio.components.forms import error_callout, success_callout
from services import connections as connections_service
from services import policy
from services.errors import DomainError
from state.navigation import backend_url
from state.session import SessionState

SECTION_ID = "connections"

# Message codes the connection routes put in the Settings URL.
_ERROR_MESSAGES = {
    "connection_denied": "The connection to {provider} was cancelled on its consent screen. Nothing changed.",
    "oauth_state_invalid": "This connection link expired or was already used. Click Connect again.",
    "connection_not_configured": "{provider} is not set up on this server yet. The variables to set are listed below.",
    "connection_token_failed": "{provider} did not accept the authorization, so nothing was connected. Click Connect to try again.",
    "connection_unavailable": "{provider} could not be reached, so nothing was connected. Try again in a minute.",
    "connection_provider_unknown": "That platform is not in the list of connections. Pick one below.",
    "role_forbidden": "Only owners and admins of this organization can connect platforms. Ask one of them.",
    "not_a_member": "There is no organization at this address that you belong to.",
    "not_found": "There is no organization at this address that you belong to.",
    "org_not_found": "There is no organization at this address that you belong to.",
    "connection_failed": "The connection to {provider} could not be completed. Try again; if it keeps failing, contact support.",
}


@dataclass
class ConnectionCard:
    id: int
    provider_key: str
    provider_name: str
    account_label: str
    scopes_text: str
    status_label: str
    expired: bool
    detail: str
    reconnect_url: str


@dataclass
class ProviderOption:
    key: str
    name: str
    scopes_text: str
    configured: bool
    env_vars: list[str]
    connected: bool


def _format_time(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else ""


def _detail(view: connections_service.ConnectionView) -> str:
    if view.needs_reconnect:
        return (
            view.last_error or "The access ended. Reconnect to keep publishing and reading results."
        )
    if view.last_error:
        return view.last_error
    if view.expires_at is not None:
        return f"Renewed automatically; current access valid until {_format_time(view.expires_at)}."
    return "Connected."


class ConnectionsState(rx.State):
    connections: list[ConnectionCard] = []
    providers: list[ProviderOption] = []
    can_manage: bool = False
    loaded: bool = False
    error: str = ""
    notice: str = ""

    def _start_url(self, slug: str, provider_key: str, reconnect_id: int | None = None) -> str:
        query = {"org": slug}
        if reconnect_id is not None:
            query["reconnect"] = str(reconnect_id)
        return backend_url(f"/connections/{provider_key}/start") + "?" + urlencode(query)

    def _fill(self, session: Session, org, session_state: SessionState) -> None:
        views = connections_service.connections_list(session=session, org_id=org.id)
        self.connections = [
            ConnectionCard(
                id=view.id,
                provider_key=view.provider_key,
                provider_name=view.provider_name,
                account_label=view.account_label or "Account",
                scopes_text=", ".join(view.scopes) or "none",
                status_label="Expired" if view.needs_reconnect else "Connected",
                expired=view.needs_reconnect,
                detail=_detail(view),
                reconnect_url=self._start_url(org.slug, view.provider_key, view.id),
            )
            for view in views
        ]
        connected = {view.provider_key for view in views}
        self.providers = [
            ProviderOption(
                key=provider.key,
                name=provider.name,
                scopes_text=", ".join(provider.scopes),
                configured=provider.configured,
                env_vars=provider.missing_env,
                connected=provider.key in connected,
            )
            for provider in connections_service.connection_providers()
        ]
        session_state.has_expired_connection = self.can_manage and any(
            v.needs_reconnect for v in views
        )

    def _message_from_url(self) -> None:
        params = self.router.url.query_parameters
        provider_key = params.get("provider", "")
        name = next((p.name for p in self.providers if p.key == provider_key), "The platform")
        if params.get("connection") == "connected":
            self.notice = f"{name} is connected."
        elif code := params.get("connection_error", ""):
            template = _ERROR_MESSAGES.get(code, _ERROR_MESSAGES["connection_failed"])
            self.error = template.format(provider=name)

    @rx.event
    async def load(self):
        """on_load of Settings: the list for members; connect/disconnect for owners and admins."""
        self.error = self.notice = ""
        session_state = await self.get_state(SessionState)
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                _user, org, actor = session_state._org_actor(session)
                target = policy.target_for(session=session, org_id=org.id)
                policy.require(actor, policy.Action.org_view, target)
            except DomainError:
                self.connections, self.providers, self.can_manage, self.loaded = (
                    [],
                    [],
                    False,
                    False,
                )
                return
            self.can_manage = bool(policy.can(actor, policy.Action.connections_manage, target))
            self._fill(session, org, session_state)
        self.loaded = True
        self._message_from_url()
        if self.error or self.notice:  # back from a platform: show the outcome, not the page top
            # After the page's own scroll-to-top on navigation and the list's first render.
            return rx.call_script(
                f"setTimeout(() => document.getElementById({json.dumps(SECTION_ID)})"
                "?.scrollIntoView({block: 'start'}), 250)"
            )
        return None

    async def _manager_org(self):
        """(org, session state) when the person may manage connections here, else None."""
        session_state = await self.get_state(SessionState)
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                _user, org, actor = session_state._org_actor(session)
                target = policy.target_for(session=session, org_id=org.id)
                policy.require(actor, policy.Action.connections_manage, target)
            except DomainError as error:
                self.error = error.message
                return None
        return org

    def _not_configured(self, provider_key: str) -> bool:
        """Say so at once (no round trip to the platform) when the server lacks its credentials."""
        try:
            provider = connections_service.connection_provider_get(provider_key)
        except DomainError as error:
            self.error = error.message
            return True
        if provider.configured:
            return False
        self.error = (
            f"{provider.name} is not set up on this server yet: an operator sets "
            f"{' and '.join(provider.missing_env)} and restarts the app. Then click again."
        )
        return True

    @rx.event
    async def connect(self, provider_key: str):
        """Leave for the platform's consent screen (through the backend start route)."""
        self.error = self.notice = ""
        org = await self._manager_org()
        if org is None or self._not_configured(str(provider_key)):
            return None
        return _navigate(self._start_url(org.slug, str(provider_key)))

    @rx.event
    async def reconnect(self, connection_id: int):
        """One click: the same flow, replacing the expired connection's tokens."""
        self.error = self.notice = ""
        card = next((c for c in self.connections if c.id == int(connection_id)), None)
        org = await self._manager_org()
        if org is None or card is None or self._not_configured(card.provider_key):
            return None
        return _navigate(card.reconnect_url)

    @rx.event
    async def disconnect(self, connection_id: int):
        self.error = self.notice = ""
        session_state = await self.get_state(SessionState)
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                user, org, actor = session_state._org_actor(session)
                target = policy.target_for(session=session, org_id=org.id)
                policy.require(actor, policy.Action.connections_manage, target)
                name = next(
                    (c.provider_name for c in self.connections if c.id == connection_id),
                    "The connection",
                )
                connections_service.connection_disconnect(
                    session=session, user=user, org_id=org.id, connection_id=int(connection_id)
                )
            except DomainError as error:
                session.rollback()
                self.error = error.message
                return
            self._fill(session, org, session_state)
        self.notice = f"{name} was disconnected and its tokens were deleted."


def _navigate(url: str):
    """A full page load of a backend route: `rx.redirect` (and same-origin links) would be
    routed client-side when the backend shares the frontend's origin (production)."""
    return rx.call_script(f"window.location.assign({json.dumps(url)})")


def _red_dot(label: str) -> rx.Component:
    return rx.box(
        width="0.625rem",
        height="0.625rem",
        min_width="0.625rem",
        border_radius="9999px",
        background=rx.color("red", 9),
        role="img",
        aria_label=label,
        title=label,
    )


def _connection_row(card: ConnectionCard) -> rx.Component:
    return rx.box(
        rx.flex(
            rx.vstack(
                rx.hstack(
                    rx.cond(card.expired, _red_dot("Needs reconnecting")),
                    rx.text(card.provider_name, weight="bold", size="3"),
                    rx.cond(
                        card.expired,
                        rx.badge(card.status_label, color_scheme="red"),
                        rx.badge(card.status_label, color_scheme="green"),
                    ),
                    align="center",
                    spacing="2",
                    wrap="wrap",
                ),
                rx.text(card.account_label, size="2"),
                rx.text("Scopes: ", card.scopes_text, size="1", color=rx.color("gray", 11)),
                rx.text(
                    card.detail,
                    size="1",
                    color=rx.cond(card.expired, rx.color("red", 11), rx.color("gray", 11)),
                ),
                spacing="1",
                min_width="0",
                flex="1",
            ),
            rx.cond(
                ConnectionsState.can_manage,
                rx.hstack(
                    rx.cond(
                        card.expired,
                        rx.button(
                            rx.icon("refresh-cw", size=16, aria_hidden="true"),
                            "Reconnect",
                            on_click=ConnectionsState.reconnect(card.id),
                            color_scheme="red",
                        ),
                    ),
                    rx.button(
                        "Disconnect",
                        variant="soft",
                        color_scheme="gray",
                        on_click=ConnectionsState.disconnect(card.id),
                        aria_label="Disconnect " + card.provider_name,
                    ),
                    spacing="2",
                ),
            ),
            direction=rx.breakpoints(initial="column", sm="row"),
            gap="3",
            align=rx.breakpoints(initial="start", sm="center"),
            width="100%",
        ),
        padding="0.75rem",
        border=f"1px solid {rx.color('gray', 5)}",
        border_radius="var(--radius-3)",
        width="100%",
    )


def _provider_row(option: ProviderOption) -> rx.Component:
    return rx.flex(
        rx.vstack(
            rx.text(option.name, weight="medium", size="2"),
            rx.cond(
                option.configured,
                rx.text("Asks for: ", option.scopes_text, size="1", color=rx.color("gray", 11)),
                rx.text(
                    "Not set up on this server: set ",
                    rx.foreach(
                        option.env_vars,
                        lambda name, index: rx.fragment(
                            rx.cond(index > 0, " and ", ""), rx.code(name, size="1")
                        ),
                    ),
                    " and restart the app.",
                    size="1",
                    color=rx.color("gray", 11),
                ),
            ),
            spacing="1",
            min_width="0",
            flex="1",
        ),
        rx.cond(
            option.configured & ConnectionsState.can_manage,
            rx.button(
                rx.cond(option.connected, "Connect another", "Connect"),
                on_click=ConnectionsState.connect(option.key),
                variant="soft",
                aria_label=rx.cond(option.connected, "Connect another ", "Connect ") + option.name,
            ),
        ),
        direction=rx.breakpoints(initial="column", sm="row"),
        gap="2",
        align=rx.breakpoints(initial="start", sm="center"),
        width="100%",
    )


def connections_section() -> rx.Component:
    """The Connections card of Settings."""
    return rx.card(
        rx.vstack(
            rx.heading("Connections", size="4", as_="h3"),
            rx.text(
                "Link LinkedIn, Meta, Google Ads and X to publish and read results. Tokens are "
                "stored encrypted and renewed automatically every hour.",
                color=rx.color("gray", 11),
                size="2",
            ),
            error_callout(ConnectionsState.error),
            success_callout(ConnectionsState.notice),
            rx.cond(
                ConnectionsState.connections.length() > 0,
                rx.vstack(
                    rx.foreach(ConnectionsState.connections, _connection_row),
                    spacing="2",
                    width="100%",
                ),
                rx.cond(
                    ConnectionsState.loaded,
                    rx.text("No platform is connected yet.", size="2", color=rx.color("gray", 11)),
                ),
            ),
            rx.divider(),
            rx.text("Add a connection", weight="medium", size="2"),
            rx.cond(
                ~ConnectionsState.can_manage & ConnectionsState.loaded,
                rx.text(
                    "Owners and admins connect platforms. Ask one of them to add a connection.",
                    size="1",
                    color=rx.color("gray", 11),
                ),
            ),
            rx.vstack(
                rx.foreach(ConnectionsState.providers, _provider_row), spacing="3", width="100%"
            ),
            spacing="3",
            width="100%",
        ),
        id=SECTION_ID,
        width="100%",
    )
