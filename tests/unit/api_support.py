"""Shared pieces of the /v1 API tests: an organization with keys, and a real server.

`serve_v1()` starts uvicorn on a free loopback port in a thread of this process, serving the
same Starlette routes the app mounts on Reflex's backend, over the process engine.
"""

from __future__ import annotations

import json
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


class FakeProvider:
    """A loopback OpenAI-compatible provider: `mode` "fail" answers 500 to every call;
    "stream_break" sends one streamed piece and then a chunk that is not JSON; "big_usage"
    answers with more tokens than any hold; "slow_stream" streams 400 pieces 50 ms apart and
    "stream" 20 pieces at once."""

    def __init__(self, mode: str = "fail"):
        import http.server

        self.mode = mode
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if outer.mode == "big_usage":
                    return self._answer(
                        200,
                        {
                            "id": "c",
                            "object": "chat.completion",
                            "created": 0,
                            "model": "m",
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": "Sure."},
                                    "finish_reason": "stop",
                                }
                            ],
                            # More than any hold: the charge is then exactly the hold.
                            "usage": {
                                "prompt_tokens": 1,
                                "completion_tokens": 10**6,
                                "total_tokens": 10**6 + 1,
                            },
                        },
                    )
                if outer.mode in ("slow_stream", "stream"):
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.end_headers()
                    try:
                        for index in range(outer.stream_pieces):
                            piece = json.dumps(
                                {
                                    "id": "x",
                                    "object": "chat.completion.chunk",
                                    "created": 0,
                                    "model": "m",
                                    "choices": [
                                        {
                                            "index": 0,
                                            "delta": {"content": f"word{index} "},
                                            "finish_reason": None,
                                        }
                                    ],
                                }
                            )
                            self.wfile.write(f"data: {piece}\n\n".encode())
                            self.wfile.flush()
                            outer.pieces_sent += 1
                            time.sleep(outer.stream_delay)
                        self.wfile.write(b"data: [DONE]\n\n")
                    except OSError:
                        outer.client_left = True
                    return
                if outer.mode == "stream_break" and b'"stream": true' in body.replace(
                    b'"stream":true', b'"stream": true'
                ):
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.end_headers()
                    piece = (
                        '{"id":"x","object":"chat.completion.chunk","created":0,"model":"m",'
                        '"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}'
                    )
                    self.wfile.write(f"data: {piece}\n\n".encode())
                    self.wfile.write(b"data: {not json\n\n")
                    self.wfile.flush()
                    return
                payload = b'{"error": {"message": "upstream exploded", "type": "server_error"}}'
                self.send_response(500)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.pieces_sent = 0
        self.stream_pieces = 400 if mode == "slow_stream" else 20
        self.stream_delay = 0.05 if mode == "slow_stream" else 0.0
        self.client_left = False
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def point_model_at(session: Session, model_key: str, base_url: str) -> None:
    """Make a registry model call `base_url` (a per-model provider endpoint)."""
    from sqlmodel import select

    from models import AIModel

    model = session.exec(select(AIModel).where(AIModel.key == model_key)).one()
    model.provider_base_url = base_url
    session.add(model)
    session.commit()
