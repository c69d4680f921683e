"""Per-address limits on the websocket: connections per minute, events per second.

The limiter itself is checked against its storages (process memory; Redis when
TEST_DATABASE_URL's companion REDIS_URL is set, as in CI: two limiters, as two backend
workers, count one address together). The namespace is checked end to end: the app's own
socket.io server and Reflex event processor served on a loopback port (without building the
frontend), driven by a socket.io client the way the browser drives it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import threading
import uuid
from collections.abc import Iterator

import pytest
import socketio
import uvicorn
from reflex.app import _ContextMiddleware
from starlette.applications import Starlette

from core.rate_limit import (
    CONNECTIONS_REFUSED,
    EVENTS_REFUSED,
    ClientRateLimiter,
    RateLimits,
)
from creative_studio.creative_studio import app
from creative_studio.rate_limited_events import (
    ADDRESS_REFUSED,
    MAX_ADDRESS_CHARS,
    RateLimitedEventNamespace,
    limit_event_rates,
)
from tests.factories import free_port

REDIS_URL = os.environ.get("REDIS_URL", "")


def _limiter(limits: RateLimits, *, redis: bool = False) -> ClientRateLimiter:
    """Limits counting every address, loopback included (the test client is on 127.0.0.1)."""
    limits = dataclasses.replace(limits, unlimited_addresses=frozenset())
    # A key prefix of its own: counts from other runs (or a running app) never mix in.
    prefix = f"cs-rate-test-{uuid.uuid4().hex[:8]}"
    return ClientRateLimiter(limits, redis_url=REDIS_URL if redis else "", key_prefix=prefix)


async def _hits(check, client: str, times: int) -> list[bool]:
    return [await check(client) for _ in range(times)]


def test_connections_over_the_limit_are_refused_per_address():
    limiter = _limiter(RateLimits(connections_per_minute=3, events_per_second=None))

    async def run():
        first = await _hits(limiter.connection_allowed, "203.0.113.7", 5)
        other = await _hits(limiter.connection_allowed, "198.51.100.9", 3)
        events = await _hits(limiter.event_allowed, "203.0.113.7", 100)  # no event limit
        return first, other, events

    first, other, events = asyncio.run(run())
    assert first == [True, True, True, False, False]
    assert other == [True, True, True]  # another address has its own count
    assert all(events)


def test_events_over_the_limit_are_refused():
    limiter = _limiter(RateLimits(connections_per_minute=None, events_per_second=5))
    allowed = asyncio.run(_hits(limiter.event_allowed, "203.0.113.7", 40))
    # However slowly this machine runs the loop, 40 events cannot fit in 5 per second here.
    assert allowed[:5] == [True] * 5
    assert allowed.count(False) > 0


@pytest.mark.skipif(not REDIS_URL, reason="set REDIS_URL to count in Redis")
def test_two_workers_count_one_address_together_in_redis():
    prefix = f"cs-rate-test-{uuid.uuid4().hex[:8]}"
    limits = RateLimits(connections_per_minute=4, events_per_second=None)
    workers = [ClientRateLimiter(limits, redis_url=REDIS_URL, key_prefix=prefix) for _ in range(2)]
    assert workers[0].storage_kind == "redis"

    async def run():
        return [await workers[i % 2].connection_allowed("203.0.113.7") for i in range(6)]

    assert asyncio.run(run()) == [True, True, True, True, False, False]


def test_unreachable_redis_lets_traffic_through():
    limiter = ClientRateLimiter(
        RateLimits(connections_per_minute=1, events_per_second=1),
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    assert asyncio.run(_hits(limiter.connection_allowed, "203.0.113.7", 3)) == [True] * 3


def test_this_machine_is_not_limited():
    """A developer, the browser tests, or a proxy on this host whose visitors all look alike."""
    limiter = ClientRateLimiter(RateLimits(connections_per_minute=1, events_per_second=1))
    assert asyncio.run(_hits(limiter.connection_allowed, "127.0.0.1", 5)) == [True] * 5
    assert asyncio.run(_hits(limiter.event_allowed, "::1", 5)) == [True] * 5
    assert asyncio.run(_hits(limiter.event_allowed, "203.0.113.7", 2)) == [True, False]


def test_limits_come_from_the_environment():
    assert RateLimits.from_environment({}) == RateLimits(60, 30)
    assert RateLimits.from_environment(
        {"RATE_LIMIT_CONNECTIONS_PER_MINUTE": "0", "RATE_LIMIT_EVENTS_PER_SECOND": " 12 "}
    ) == RateLimits(None, 12)
    with pytest.raises(ValueError, match="RATE_LIMIT_EVENTS_PER_SECOND='lots' is not a whole"):
        RateLimits.from_environment({"RATE_LIMIT_EVENTS_PER_SECOND": "lots"})


def test_the_app_receives_its_websocket_through_the_limits():
    assert isinstance(app.event_namespace, RateLimitedEventNamespace)
    assert app.sio.namespace_handlers[app.event_namespace.namespace] is app.event_namespace


# --- end to end: the app's socket.io server on a loopback port ----------------------------------


@pytest.fixture
def served_app(engine) -> Iterator[tuple[str, ClientRateLimiter]]:
    """The app's websocket and event processor on 127.0.0.1 with small limits."""
    previous = app.event_namespace
    limiter = _limiter(RateLimits(connections_per_minute=4, events_per_second=3))
    limit_event_rates(app, limiter)
    # What App.__call__ serves, without compiling the frontend.
    asgi = Starlette(lifespan=app._run_lifespan_tasks)
    asgi.add_middleware(_ContextMiddleware, reflex_app=app)
    asgi.mount("", app._api)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        assert server.started, "the test server did not start"
        yield f"http://127.0.0.1:{port}", limiter
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.sio.register_namespace(previous)
        app._event_namespace = previous


NAMESPACE = app.event_namespace.namespace  # "/_event", like the path it is served on
SWITCH_ORG = "reflex___state____state.state___session____session_state.switch_org"


def _toasts(messages: list) -> list[str]:
    """The texts of the toasts in the state updates a client received."""
    texts = []
    for update in messages:
        for event in update.get("events", []) if isinstance(update, dict) else []:
            texts.append(json.dumps(event.get("payload", ""), ensure_ascii=False))
    return texts


async def _connect(url: str, received: list, refusals: list | None = None) -> socketio.AsyncClient:
    """A tab's websocket; state updates go to `received`, a refusal's reason to `refusals`."""
    client = socketio.AsyncClient(reconnection=False)
    client.on("event", lambda data: received.append(data), namespace=NAMESPACE)
    if refusals is not None:
        client.on("connect_error", lambda data: refusals.append(data), namespace=NAMESPACE)
    await client.connect(
        f"{url}?token={uuid.uuid4()}",
        socketio_path="/_event",
        namespaces=[NAMESPACE],
        transports=["websocket"],
        wait_timeout=20,
    )
    return client


def test_a_flood_of_events_is_cut_off_with_a_toast_and_connections_after_the_limit_refused(
    served_app,
):
    url, _ = served_app

    async def run() -> tuple[list, list, int]:
        received: list = []
        client = await _connect(url, received)
        for _ in range(40):
            await client.emit(
                "event",
                {
                    "name": SWITCH_ORG,
                    "payload": {"slug": "no-such-org"},
                    "router_data": {"pathname": "/", "query": {}, "asPath": "/"},
                },
                namespace=NAMESPACE,
            )
        for _ in range(100):  # until the processed events and the refusal have come back
            toasts = _toasts(received)
            if any(EVENTS_REFUSED in t for t in toasts) and any(
                "not a member" in t for t in toasts
            ):
                break
            await asyncio.sleep(0.1)
        await client.disconnect()
        refusals: list = []
        others = []
        try:
            for _ in range(6):  # the first connection counted too: the limit is 4 a minute
                others.append(await _connect(url, [], refusals))
        except socketio.exceptions.ConnectionError:
            pass
        for other in others:
            await other.disconnect()
        return received, refusals, len(others)

    received, refusals, opened = asyncio.run(run())
    toasts = _toasts(received)
    processed = sum("not a member of that organization" in t for t in toasts)
    assert 1 <= processed < 40  # the first ones were carried out, the flood was not
    assert sum(EVENTS_REFUSED in t for t in toasts) >= 1
    assert opened == 3
    # What the browser's connection banner shows: "Cannot connect to server: too many ...".
    assert refusals == [{"message": CONNECTIONS_REFUSED}]


def test_an_event_from_an_overlong_page_address_is_dropped(served_app):
    url, _ = served_app
    long_query = "x" * (MAX_ADDRESS_CHARS + 1)

    async def run() -> list:
        received: list = []
        client = await _connect(url, received)
        for path in (f"/?q={long_query}", "/"):  # the overlong one first, then a normal one
            await client.emit(
                "event",
                {
                    "name": SWITCH_ORG,
                    "payload": {"slug": "no-such-org"},
                    "router_data": {"pathname": "/", "query": {}, "asPath": path},
                },
                namespace=NAMESPACE,
            )
        for _ in range(100):
            if any("not a member" in t for t in _toasts(received)):
                break
            await asyncio.sleep(0.1)
        await client.disconnect()
        return received

    received = asyncio.run(run())
    toasts = _toasts(received)
    assert sum(ADDRESS_REFUSED in t for t in toasts) == 1
    assert sum("not a member of that organization" in t for t in toasts) == 1  # the normal one
    assert long_query not in json.dumps(received, default=str)  # never reached the state
