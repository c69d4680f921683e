"""Only the app's own pages may open its websocket or read its routes with cookies.

Reflex allows every origin by default; a page on another site (or another port of the same
host) could then drive a signed-in person's tab. These probes speak raw HTTP to the running
production build, as an attacker's page would make the browser do.
"""

from __future__ import annotations

import base64
import os
import socket
from urllib.parse import urlsplit

import httpx
import pytest


def _websocket_handshake(base_url: str, origin: str | None) -> int:
    """The HTTP status of a websocket upgrade to Reflex's event endpoint from `origin`."""
    parts = urlsplit(base_url)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /_event/?EIO=4&transport=websocket HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = sock.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def test_the_app_own_origin_opens_the_websocket(app_server):
    assert _websocket_handshake(app_server.base_url, app_server.base_url) == 101


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:1"])
def test_another_origin_cannot_open_the_websocket(app_server, origin):
    assert _websocket_handshake(app_server.base_url, origin) != 101


def test_credentialed_cors_is_not_granted_to_another_site(app_server):
    response = httpx.get(
        app_server.backend_url + "/healthz", headers={"Origin": "http://evil.example"}
    )
    assert response.headers.get("access-control-allow-origin") not in ("*", "http://evil.example")
