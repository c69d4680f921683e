"""Per-IP limits on the app's websocket: new connections per minute, events per second.

Every browser tab is one websocket connection and every click or keystroke handler one event;
Reflex loads (and, with Redis, stores) the tab's whole state for each event. A script that
opens connections or sends events as fast as it can therefore costs memory and CPU for every
user. `ClientRateLimiter` answers "may this address connect / send one more event now" before
Reflex touches any state; `creative_studio/rate_limited_events.py` asks it where Reflex
receives the websocket traffic.

The counters are sliding-window counters of the `limits` library: in Redis when `REDIS_URL`
is set (so every backend worker counts the same address together; each key expires with its
window), in process memory otherwise. When Redis cannot be reached the limiter lets the
traffic through and logs it: a rate limit must never be what takes the app down.

Configuration (environment): `RATE_LIMIT_CONNECTIONS_PER_MINUTE` (default 60) and
`RATE_LIMIT_EVENTS_PER_SECOND` (default 30); 0 turns a limit off. The address is the one Reflex
reports for the connection, so behind a reverse proxy set Reflex's `trusted_proxy_hops`, or
every visitor shares the proxy's address. Loopback addresses are not limited: they are this
machine (a developer, the browser tests) or a proxy on it whose visitors cannot be told apart,
and counting them together would lock every visitor out at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

log = logging.getLogger("creative_studio.rate_limit")

DEFAULT_CONNECTIONS_PER_MINUTE = 60
DEFAULT_EVENTS_PER_SECOND = 30
KEY_PREFIX = "cs-rate"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

CONNECTIONS_REFUSED = (
    "too many connections from your network in the last minute. Wait a minute; the page "
    "reconnects by itself"
)
EVENTS_REFUSED = (
    "Too many actions from your network at once, so the last ones were not carried out. "
    "Wait a few seconds, then try again."
)


@dataclass(frozen=True)
class RateLimits:
    """How many connections per minute and events per second one address may make (None: no
    limit)."""

    connections_per_minute: int | None = DEFAULT_CONNECTIONS_PER_MINUTE
    events_per_second: int | None = DEFAULT_EVENTS_PER_SECOND
    unlimited_addresses: frozenset[str] = LOOPBACK

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> RateLimits:
        """The limits configured in the environment (defaults where unset).

        Raises:
            ValueError: a value that is not a whole number, naming the variable.
        """
        env = os.environ if environ is None else environ

        def read(name: str, default: int) -> int | None:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(
                    f"{name}={raw!r} is not a whole number. Set it to how many are allowed, "
                    "or 0 for no limit."
                ) from None
            return value if value > 0 else None

        return cls(
            connections_per_minute=read(
                "RATE_LIMIT_CONNECTIONS_PER_MINUTE", DEFAULT_CONNECTIONS_PER_MINUTE
            ),
            events_per_second=read("RATE_LIMIT_EVENTS_PER_SECOND", DEFAULT_EVENTS_PER_SECOND),
        )


def _storage(redis_url: str, key_prefix: str) -> Storage:
    if not redis_url:
        return MemoryStorage()
    # redis-py's asyncio client (already a dependency), not the default coredis.
    return RedisStorage(f"async+{redis_url}", implementation="redispy", key_prefix=key_prefix)


class ClientRateLimiter:
    """Counts connections and events per client address and says when one is over its limit."""

    def __init__(self, limits: RateLimits, *, redis_url: str = "", key_prefix: str = KEY_PREFIX):
        self.limits = limits
        self.storage_kind = "redis" if redis_url else "memory"
        self._limiter = SlidingWindowCounterRateLimiter(_storage(redis_url, key_prefix))
        self._connections: RateLimitItem | None = (
            RateLimitItemPerMinute(limits.connections_per_minute)
            if limits.connections_per_minute
            else None
        )
        self._events: RateLimitItem | None = (
            RateLimitItemPerSecond(limits.events_per_second) if limits.events_per_second else None
        )

    async def _hit(self, item: RateLimitItem | None, kind: str, client: str) -> bool:
        if item is None or client in self.limits.unlimited_addresses:
            return True
        try:
            return await self._limiter.hit(item, kind, client or "unknown")
        except Exception:  # noqa: BLE001 - fail open: the app keeps serving without its limiter
            log.warning("Rate limit storage unavailable; %s from %s let through", kind, client)
            return True

    async def connection_allowed(self, client: str) -> bool:
        """Count one new websocket connection from `client`; False when over the limit."""
        return await self._hit(self._connections, "connect", client)

    async def event_allowed(self, client: str) -> bool:
        """Count one event from `client`; False when over the limit."""
        return await self._hit(self._events, "event", client)

    async def reset(self) -> None:
        """Forget every count (tests, and an operator lifting a block at once)."""
        await self._limiter.storage.reset()
