"""Settings > Connections: the org's OAuth links to social and ad platforms.

Members see the list; owners and admins connect, reconnect and disconnect. Connecting leaves
for the backend start route (creative_studio/api/connections_routes.py), which sends the
browser to the platform's consent screen and back to Settings with a message code in the URL.
No token ever reaches this state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

import reflex as rx

from core import routes
from services import connections as connections_service
from services import policy
from services.error_codes import Code
from services.errors import NotFound, error_with_code
from state.navigation import backend_url, navigate
from state.org_page import NOT_FOUND_RELOAD, Acting, OrgPageState, bounded, browser_id
from state.session import SessionState

Action = policy.Action

# The id of the Connections card on Settings (scrolled into view when coming back).
SECTION_ID = "connections"

# Message codes the connection routes put in the Settings URL.
_ERROR_MESSAGES = {
    "connection_denied": "The connection to {provider} was cancelled on its consent screen. Nothing changed.",
    "oauth_state_invalid": "This connection link expired or was already used. Click Connect again.",
    "connection_not_configured": "{provider} is not available yet. Contact support if you need it.",
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


@dataclass
class ProviderOption:
    key: str
    name: str
    scopes_text: str
    configured: bool
    env_vars: list[str]
    connected: bool


def format_time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else ""


def connection_detail(view: connections_service.ConnectionView) -> str:
    """The line under a connection: why it needs reconnecting, or until when it works."""
    if view.needs_reconnect:
        return (
            view.last_error or "The access ended. Reconnect to keep publishing and reading results."
        )
    if view.last_error:
        return view.last_error
    if view.expires_at is not None:
        return f"Renewed automatically; current access valid until {format_time(view.expires_at)}."
    return "Connected."


def start_url(org_slug: str, provider_key: str, reconnect_id: int | None = None) -> str:
    """The backend route that leaves for `provider_key`'s consent screen for this org."""
    query = {"org": org_slug}
    if reconnect_id is not None:
        query["reconnect"] = str(reconnect_id)
    return backend_url(routes.connections_start(provider_key)) + "?" + urlencode(query)


def _configured_provider(provider_key: str) -> connections_service.ConnectionProvider:
    """The platform, when this server has its credentials; say so at once (no round trip to
    the platform) when it does not."""
    provider = connections_service.connection_provider_get(provider_key)
    if not provider.configured:
        # Customers are never told to set server variables; operators see them in the list.
        raise error_with_code(
            Code.connection_not_configured,
            f"{provider.name} is not available yet. Contact support if you need it.",
        )
    return provider


def _connection(acting: Acting, connection_id: int) -> connections_service.ConnectionView:
    """A connection of this org, or "not found"."""
    views = connections_service.connections_list(session=acting.session, org_id=acting.org.id)
    view = next((view for view in views if view.id == connection_id), None)
    if view is None:
        raise NotFound(NOT_FOUND_RELOAD)
    return view


class ConnectionsState(OrgPageState, rx.State):
    connections: list[ConnectionCard] = []
    providers: list[ProviderOption] = []
    can_manage: bool = False
    loaded: bool = False

    # --- the skeleton's hooks -----------------------------------------------------------------

    def _refresh(self, acting: Acting) -> None:
        self.can_manage = acting.can(Action.connections_manage)
        views = connections_service.connections_list(session=acting.session, org_id=acting.org.id)
        self.connections = [
            ConnectionCard(
                id=view.id,
                provider_key=view.provider_key,
                provider_name=view.provider_name,
                account_label=view.account_label or "Account",
                scopes_text=", ".join(view.scopes) or "none",
                status_label="Expired" if view.needs_reconnect else "Connected",
                expired=view.needs_reconnect,
                detail=connection_detail(view),
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
                # The server variables to set: for platform operators only (and the README).
                env_vars=provider.missing_env if acting.user.is_operator else [],
                connected=provider.key in connected,
            )
            for provider in connections_service.connection_providers()
        ]

    async def _show_red_dot(self) -> None:
        """The sidebar's red dot next to Settings follows what this list shows."""
        session_state = await self.get_state(SessionState)
        session_state.has_expired_connection = self.can_manage and any(
            card.expired for card in self.connections
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

    # --- events -------------------------------------------------------------------------------

    @rx.event
    async def load(self):
        """on_load of Settings: the list for members; connect/disconnect for owners and admins."""
        if await self._load() is None:
            return None
        self.loaded = True
        await self._show_red_dot()
        self._message_from_url()
        if self.error or self.notice:  # back from a platform: show the outcome, not the page top
            # After the page's own scroll-to-top on navigation and the list's first render.
            return rx.call_script(
                f"setTimeout(() => document.getElementById({json.dumps(SECTION_ID)})"
                "?.scrollIntoView({block: 'start'}), 250)"
            )
        return None

    @rx.event
    async def connect(self, provider_key: str):
        """Leave for the platform's consent screen (through the backend start route)."""
        url = await self._act(
            Action.connections_manage,
            lambda a: start_url(a.org.slug, _configured_provider(bounded(provider_key, 64)).key),
            refresh=False,
        )
        return navigate(url) if url is not None else None

    @rx.event
    async def reconnect(self, connection_id: str):
        """One click: the same flow, replacing the expired connection's tokens."""

        def reconnect_url(acting: Acting) -> str:
            view = _connection(acting, browser_id(connection_id))
            provider = _configured_provider(view.provider_key)
            return start_url(acting.org.slug, provider.key, view.id)

        url = await self._act(Action.connections_manage, reconnect_url, refresh=False)
        return navigate(url) if url is not None else None

    @rx.event
    async def disconnect(self, connection_id: str):
        def disconnect(acting: Acting) -> str:
            number = browser_id(connection_id)
            views = connections_service.connections_list(
                session=acting.session, org_id=acting.org.id
            )
            name = next((v.provider_name for v in views if v.id == number), "The connection")
            # The service says so when the connection is gone already.
            connections_service.connection_disconnect(
                session=acting.session, user=acting.user, org_id=acting.org.id, connection_id=number
            )
            return name

        await self._act(
            Action.connections_manage,
            disconnect,
            success=lambda name: f"{name} was disconnected and its tokens were deleted.",
        )
        await self._show_red_dot()
