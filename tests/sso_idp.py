"""A loopback OpenID provider standing in for an organization's IdP (Okta, Entra, Keycloak...).

It is the Google sign-in tests' provider (`tests/unit/test_google_oidc.FakeGoogle`: discovery,
/authorize, a /token endpoint that checks the client secret, the redirect URI and PKCE and signs
RS256 ID tokens, /jwks) plus what an organization's IdP adds: a list of registered redirect
URIs. An unregistered redirect URI is refused at /authorize (sent back with
`error=invalid_request`, as Keycloak and Entra describe it) and at /token.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlencode

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse

from tests.unit.test_google_oidc import CLIENT_ID, CLIENT_SECRET, FakeGoogle

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "FakeIdp", "running_idp"]


@dataclass
class FakeIdp(FakeGoogle):
    registered_redirects: list[str] = field(default_factory=list)
    discovery_overrides: dict[str, str] = field(default_factory=dict)  # e.g. a private jwks_uri

    def reset(self) -> None:
        super().reset()
        self.discovery_overrides = {}
        self.identity = {
            "sub": "idp-sub-nina",
            "email": "nina@acme-corp.test",
            "email_verified": True,
            "name": "Nina Newcomer",
        }

    async def discovery(self, request: Request) -> JSONResponse:
        response = await super().discovery(request)
        if not self.discovery_overrides:
            return response
        return JSONResponse({**json.loads(response.body), **self.discovery_overrides})

    async def authorize(self, request: Request) -> RedirectResponse | JSONResponse:
        redirect_uri = request.query_params.get("redirect_uri", "")
        if self.registered_redirects and redirect_uri not in self.registered_redirects:
            back = {
                "state": request.query_params.get("state", ""),
                "error": "invalid_request",
                "error_description": "Invalid parameter: redirect_uri",
            }
            return RedirectResponse(redirect_uri + "?" + urlencode(back), status_code=302)
        return await super().authorize(request)

    async def token(self, request: Request) -> JSONResponse:
        form = dict(await request.form())
        if self.registered_redirects and form.get("redirect_uri") not in self.registered_redirects:
            self.token_refusals.append("redirect_uri not registered")
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "redirect_uri mismatch"},
                status_code=400,
            )
        return await super().token(request)


@contextmanager
def running_idp() -> Iterator[FakeIdp]:
    """The provider served by uvicorn on a free loopback port until the block ends."""
    provider = FakeIdp()
    provider.reset()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    provider.issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(provider.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the loopback identity provider did not start"
        time.sleep(0.02)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
