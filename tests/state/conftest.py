"""Call Reflex State handlers directly, as the browser would, with a signed-in cookie.

`page_state(StateClass, cookie=..., path="/org/acme/team")` builds the app's state tree for
one tab (root state with every substate), sets the router data the websocket would carry (the
Cookie header and the page URL) and returns the requested state. Handlers are then awaited
through `call(state, "handler", *args)`, which runs the undecorated function exactly as
Reflex's event processing does, and returns what it returned (redirects, toasts...).

SQLite note: the test database starts every transaction with BEGIN IMMEDIATE (see core/db.py),
so a read through the test's own `session` keeps the write lock until it commits or rolls
back; commit (or read through `core.db.new_session()`) before calling a handler.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import reflex as rx
from reflex.istate.data import RouterData

from creative_studio.creative_studio import app  # noqa: F401  (registers every page State)


def _router(cookie: str, path: str) -> RouterData:
    return RouterData.from_router_data(
        {
            "headers": {"cookie": cookie, "origin": "http://localhost:3000"},
            "pathname": path,
            "asPath": path,
            "query": {},
            "token": "test-tab",
            "sid": "test-sid",
        }
    )


def build_page_state(state_cls: type[rx.State], *, cookie: str = "", path: str = "/"):
    root = rx.State(_reflex_internal_init=True)
    router = _router(cookie, path)
    stack = [root]
    while stack:
        current = stack.pop()
        current.router = router
        stack.extend(current.substates.values())
    return root._get_state_from_cache(state_cls)


async def call_handler(state: rx.State, name: str, *args: Any) -> Any:
    handler = getattr(type(state), name)
    fn = handler.fn if hasattr(handler, "fn") else handler
    result = fn(state, *args)
    if inspect.isawaitable(result):
        result = await result
    # A handler that yields (to show a pending button first) runs to its end; what it yielded
    # last is what it returned.
    if inspect.isasyncgen(result):
        updates = [update async for update in result if update is not None]
        return updates[-1] if updates else None
    if inspect.isgenerator(result):
        updates = [update for update in result if update is not None]
        return updates[-1] if updates else None
    return result


@pytest.fixture
def page_state(engine):
    """Build a page state over the test database (`engine` makes it the process engine)."""
    return build_page_state


@pytest.fixture
def call():
    return call_handler
