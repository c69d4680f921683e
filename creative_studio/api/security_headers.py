"""Security headers on every HTTP response of a production server (pages, static files, routes).

In `reflex run --env prod` one backend process serves the built frontend and every route on one
port; the app wraps that whole ASGI app (`rx.App(api_transformer=...)`, after the routes of
`build_api` are mounted and the compiled frontend is appended), so nothing it answers leaves
without these headers:

- `Content-Security-Policy`: only this deployment's own origins (pages, backend, websocket) and
  the asset store; `frame-ancestors 'none'` so no other site can frame the app (clickjacking of
  remove member, transfer, delete). Scripts: the built files, the inline scripts of the built
  HTML pages by their SHA-256 hashes (read once from the build), and `'unsafe-eval'`, which
  Reflex's event loop needs to run `rx.call_script` and downloads. Styles may be inline
  (Radix Themes and Emotion write style attributes and `<style>` elements at run time).
- `X-Frame-Options: DENY` for browsers without `frame-ancestors`; `X-Content-Type-Options:
  nosniff`; `Referrer-Policy: strict-origin-when-cross-origin` (one-time codes and signed asset
  links never leave in a Referer); `Permissions-Policy` turning off device features the app
  does not use; `Strict-Transport-Security` when the public address is https.

A header a route sets itself (an asset's own `X-Content-Type-Options`, say) is kept. Websocket
connections pass through untouched (their origin is checked by the CORS allow-list).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import Settings, get_settings

# One year; the header is sent only over an https deployment, so a mistake cannot lock out
# plain-http development.
HSTS_MAX_AGE_SECONDS = 31_536_000
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)
_INLINE_SCRIPT = re.compile(
    rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)


def production_build() -> bool:
    """True in the server processes of `reflex run --env prod` (and Reflex's production export)."""
    return os.environ.get("REFLEX_ENV_MODE", "") == "prod"


def headers_wanted(settings: Settings | None = None) -> bool:
    """Production settings or a production build: development servers get no extra headers
    (the development frontend is served by its own dev server, with hot-reload scripts)."""
    return (settings or get_settings()).is_production or production_build()


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _websocket_origin(origin: str) -> str:
    if origin.startswith("https://"):
        return "wss://" + origin.removeprefix("https://")
    if origin.startswith("http://"):
        return "ws://" + origin.removeprefix("http://")
    return ""


def inline_script_hashes(static_dir: Path | None) -> list[str]:
    """`'sha256-...'` sources of every inline `<script>` in the built HTML pages."""
    if static_dir is None or not static_dir.is_dir():
        return []
    hashes: set[str] = set()
    for page in sorted(static_dir.rglob("*.html")):
        for body in _INLINE_SCRIPT.findall(page.read_bytes()):
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            hashes.add(f"'sha256-{digest}'")
    return sorted(hashes)


def content_security_policy(
    settings: Settings, *, script_hashes: Sequence[str] = (), extra_origins: Sequence[str] = ()
) -> str:
    """The policy: content from this deployment's own origins (APP_BASE_URL, API_BASE_URL and
    `extra_origins`, e.g. the URLs the built frontend was given) and the asset store only."""
    own = [
        origin
        for origin in dict.fromkeys(
            _origin(url)
            for url in (settings.app_base_url, settings.backend_base_url, *extra_origins)
        )
        if origin
    ]
    sockets = [_websocket_origin(origin) for origin in own]
    storage = [_origin(settings.storage_endpoint_url)] if settings.storage_endpoint_url else []
    media = ["'self'", "data:", "blob:", *own, *storage]
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'unsafe-eval'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": media,
        "media-src": media,
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'", *own, *sockets, *storage],
        "worker-src": ["'self'", "blob:"],
        "frame-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'", *own],
    }
    return "; ".join(
        f"{name} {' '.join(dict.fromkeys(sources))}" for name, sources in directives.items()
    )


def security_headers(
    settings: Settings, *, script_hashes: Sequence[str] = (), extra_origins: Sequence[str] = ()
) -> dict[str, str]:
    """Every header this deployment adds to a response."""
    headers = {
        "Content-Security-Policy": content_security_policy(
            settings, script_hashes=script_hashes, extra_origins=extra_origins
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": PERMISSIONS_POLICY,
    }
    if urlsplit(settings.app_base_url).scheme.lower() == "https":
        headers["Strict-Transport-Security"] = f"max-age={HSTS_MAX_AGE_SECONDS}; includeSubDomains"
    return headers


class SecurityHeadersMiddleware:
    """ASGI middleware adding `headers()` to every HTTP response that does not set them itself.

    `headers` is called on the first response and its answer kept: the built frontend (whose
    inline scripts the policy hashes) exists by the time the server answers.
    """

    def __init__(self, app: ASGIApp, headers: Callable[[], dict[str, str]]):
        self.app = app
        self._headers_factory = headers
        self._headers: list[tuple[str, str]] | None = None

    def _resolved(self) -> list[tuple[str, str]]:
        if self._headers is None:
            self._headers = list(self._headers_factory().items())
        return self._headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._resolved()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _built_frontend() -> tuple[Path, list[str]]:
    """Where Reflex's production build keeps the pages this process serves, and the public
    URLs the built frontend was given (its websocket and upload endpoints)."""
    from reflex.config import get_config
    from reflex.constants import Dirs
    from reflex.utils import prerequisites

    config = get_config()
    static_dir = prerequisites.get_web_dir() / Dirs.STATIC / config.frontend_path.strip("/")
    return static_dir.resolve(), [url for url in (config.deploy_url, config.api_url) if url]


def _production_headers(settings: Settings) -> dict[str, str]:
    static_dir, frontend_urls = _built_frontend()
    return security_headers(
        settings,
        script_hashes=inline_script_hashes(static_dir),
        extra_origins=frontend_urls,
    )


def with_security_headers(app: ASGIApp) -> ASGIApp:
    """The app's `api_transformer`: wraps the whole backend (routes and the built frontend) in
    production; returns it unchanged in development."""
    settings = get_settings()
    if not headers_wanted(settings):
        return app
    return SecurityHeadersMiddleware(app, lambda: _production_headers(settings))
