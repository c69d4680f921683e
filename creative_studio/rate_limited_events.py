"""Where Reflex receives the websocket: refuse an address over its connection or event limit.

Reflex's `EventNamespace` accepts each socket.io connection (`on_connect`) and each event
(`on_event`) and hands them to its event processor, which loads the tab's state. The subclass
here asks `core.rate_limit.ClientRateLimiter` first:
- a connection over the per-minute limit is refused; socket.io gives the browser the reason,
  which Reflex's connection banner shows ("Cannot connect to server: too many connections
  ...") while the page keeps retrying with backoff;
- an event over the per-second limit is dropped before any state is loaded, and the tab gets
  one toast saying so (at most one a second, so a flood does not become a flood of toasts);
- an event whose page address is longer than any address of this app is dropped the same way:
  Reflex keeps the address of the tab's last event in its state (memory or Redis) for as long
  as the tab lives, and the browser chooses it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import reflex as rx
from reflex.app import EventNamespace
from reflex.state import StateUpdate
from reflex_base.constants import RouteVar
from reflex_base.event import Event
from socketio import exceptions as socketio_exceptions

from core.rate_limit import CONNECTIONS_REFUSED, EVENTS_REFUSED, ClientRateLimiter, RateLimits
from core.settings import get_settings

log = logging.getLogger("creative_studio.rate_limit")

_TOAST_EVERY_SECONDS = 1.0
# The longest page address (path and query) an event may carry. The app's longest is a local
# checkout link (its signed token is at most 4,096 characters).
MAX_ADDRESS_CHARS = 16_384
ADDRESS_REFUSED = (
    "This page address is too long to be one of this app's, so the page did not act on it. "
    "Open the page again from its link or the menu."
)


def _address_chars(data: Any) -> int:
    """How long the page address in an event message is (router data as sent)."""
    router_data = data.get("router_data") if isinstance(data, dict) else None
    if not router_data:
        return 0
    return len(json.dumps(router_data, default=str))


class RateLimitedEventNamespace(EventNamespace):
    """Reflex's event namespace, with per-address limits in front of it."""

    def __init__(self, namespace: str, app: rx.App, limiter: ClientRateLimiter):
        super().__init__(namespace, app)
        self.limiter = limiter
        self._last_toast: dict[str, float] = {}

    def _client_ip(self, sid: str, environ: dict | None = None) -> str:
        """The address Reflex reports for this connection (trusted proxy hops applied)."""
        known = self._static_router_data.get(sid)
        if known is None and environ is not None:
            known = self._build_static_router_data(sid, environ)
        return str((known or {}).get(RouteVar.CLIENT_IP) or "")

    async def on_connect(self, sid: str, environ: dict, auth: Any = None):
        client = self._client_ip(sid, environ)
        if not await self.limiter.connection_allowed(client):
            log.warning("Connection from %s refused: over its per-minute limit", client)
            raise socketio_exceptions.ConnectionRefusedError(CONNECTIONS_REFUSED)
        return await super().on_connect(sid, environ, auth)

    async def on_event(self, sid: str, data: Any):
        if not await self.limiter.event_allowed(self._client_ip(sid)):
            await self._say(sid, EVENTS_REFUSED)
            return None
        if _address_chars(data) > MAX_ADDRESS_CHARS:
            await self._say(sid, ADDRESS_REFUSED)
            return None
        return await super().on_event(sid, data)

    async def _say(self, sid: str, message: str) -> None:
        """One toast to this tab (at most one a second)."""
        now = time.monotonic()
        if now - self._last_toast.get(sid, 0.0) < _TOAST_EVERY_SECONDS:
            return
        self._last_toast[sid] = now
        update = StateUpdate(events=Event.from_event_type(rx.toast.error(message)))
        await self.emit("event", update, to=sid)

    def on_disconnect(self, sid: str):
        self._last_toast.pop(sid, None)
        return super().on_disconnect(sid)


def limit_event_rates(
    app: rx.App, limiter: ClientRateLimiter | None = None
) -> ClientRateLimiter | None:
    """Put the rate-limited namespace in place of Reflex's own (before the server starts).

    The limits come from the environment and count in Redis when REDIS_URL is set.
    """
    current = app.event_namespace
    if current is None or app.sio is None:  # an app without state has no websocket
        return None
    limiter = limiter or ClientRateLimiter(
        RateLimits.from_environment(), redis_url=get_settings().redis_url
    )
    namespace = RateLimitedEventNamespace(current.namespace, app, limiter)
    app.sio.register_namespace(namespace)
    app._event_namespace = namespace  # Reflex reads it when its event processor starts
    return limiter
