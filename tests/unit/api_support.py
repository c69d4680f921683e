"""Shared pieces of the /v1 API tests: an organization with keys, and a real server.

`serve_v1()` starts uvicorn on a free loopback port in a thread of this process, serving the
same Starlette routes the app mounts on Reflex's backend, over the process engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from sqlmodel import Session

from creative_studio.api import v1
from models import User
from services import api_keys
from tests.factories import free_port
from tests.unit.test_generations import World

ALL_SCOPES = list(api_keys.SCOPES)


class ApiWorld(World):
    """`World` (owner, editor, viewer, scoped editor; Spring and Autumn) plus an admin."""

    def __init__(self, session: Session, plan: str = "growth", balance: int = 3000):
        super().__init__(session, plan=plan, balance=balance)
        from models.enums import OrgRole

        self.admin = self.member(f"admin-{plan}@example.com", OrgRole.admin)
        session.commit()

    def key(
        self,
        user: User | None = None,
        scopes: list[str] | None = None,
        **options,
    ) -> str:
        created = api_keys.api_key_create(
            session=self.session,
            actor_user=user or self.owner,
            org_id=self.org.id,
            name=options.pop("name", "Test key"),
            scopes=scopes or ALL_SCOPES,
            **options,
        )
        self.session.commit()
        return created.secret


@contextmanager
def serve_v1() -> Iterator[str]:
    """A real HTTP server of the /v1 routes; yields its base URL (http://127.0.0.1:port/v1)."""
    port = free_port()
    config = uvicorn.Config(
        v1.build_v1_api(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
