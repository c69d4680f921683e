"""Security headers on every response of a production server, and a policy the app lives with.

Two layers:
- the middleware on a small Starlette app (which headers, when HSTS, what a route keeps, that
  development servers are left alone, the hashes of inline scripts);
- the real production build (`app_server`: `reflex run --env prod`, frontend and backend on one
  port) in Chromium: pages, static files and routes carry the headers; a signed-in owner walks
  the main pages without one Content-Security-Policy violation; a script injected into the
  page does not run; another site cannot frame the app.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import expect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from core.settings import Settings
from creative_studio.api import security_headers as sh
from services.seed import DEV_PASSWORD
from tests.factories import free_port

# The running production build and Chromium come from tests/live_app.py (fixtures app_server,
# browser, context, page, shared with the browser tests).
from tests.live_app import sign_in

REQUIRED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
}


def _directives(policy: str) -> dict[str, list[str]]:
    found = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        found[name] = sources
    return found


def _assert_protected(headers) -> dict[str, list[str]]:
    for name, value in REQUIRED.items():
        assert headers.get(name) == value, (name, headers.get(name))
    assert "camera=()" in headers["permissions-policy"]
    policy = _directives(headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "*" not in " ".join(source for sources in policy.values() for source in sources)
    return policy


# --- the middleware ----------------------------------------------------------------------------


def _settings(**values) -> Settings:
    return Settings(app_env="development", secret_key="k" * 40, **values)


def _wrapped(settings: Settings, **options) -> TestClient:
    async def page_view(_request):
        return HTMLResponse("<html><body>page</body></html>")

    async def api(_request):
        return JSONResponse({"ok": True})

    async def own_policy(_request):
        return PlainTextResponse(
            "user upload", headers={"Content-Security-Policy": "sandbox", "X-Frame-Options": "X"}
        )

    async def echo(websocket):
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    inner = Starlette(
        routes=[
            Route("/page", page_view),
            Route("/api", api, methods=["GET", "POST"]),
            Route("/upload", own_policy),
            WebSocketRoute("/_event", echo),
        ]
    )
    middleware = sh.SecurityHeadersMiddleware(
        inner, lambda: sh.security_headers(settings, **options)
    )
    return TestClient(middleware)


def test_every_http_response_carries_the_headers():
    client = _wrapped(_settings(app_base_url="http://localhost:3000"))
    for answer in (
        client.get("/page"),
        client.get("/api"),
        client.post("/api"),
        client.get("/missing"),  # 404
        client.put("/api"),  # 405
    ):
        _assert_protected(answer.headers)


def test_a_route_that_sets_its_own_policy_keeps_it():
    answer = _wrapped(_settings()).get("/upload")
    assert answer.headers["content-security-policy"] == "sandbox"
    assert answer.headers["x-frame-options"] == "X"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_websocket_passes_through_untouched():
    with _wrapped(_settings()).websocket_connect("/_event") as socket:
        assert socket.receive_text() == "hello"


def test_hsts_only_when_the_public_address_is_https():
    plain = _wrapped(_settings(app_base_url="http://localhost:3000")).get("/page")
    assert "strict-transport-security" not in plain.headers
    secure = _wrapped(_settings(app_base_url="https://studio.example.test")).get("/page")
    hsts = secure.headers["strict-transport-security"]
    assert re.fullmatch(r"max-age=(\d+); includeSubDomains", hsts)
    assert int(hsts.split("=")[1].split(";")[0]) >= 180 * 86400


def test_the_policy_names_this_deployment_its_websocket_and_asset_store_only():
    settings = _settings(
        app_base_url="https://studio.example.test",
        api_base_url="https://api.studio.example.test",
        storage_endpoint_url="https://assets.example-s3.test/bucket",
    )
    policy = _directives(sh.content_security_policy(settings))
    assert policy["connect-src"] == [
        "'self'",
        "https://studio.example.test",
        "https://api.studio.example.test",
        "wss://studio.example.test",
        "wss://api.studio.example.test",
        "https://assets.example-s3.test",
    ]
    assert "https://assets.example-s3.test" in policy["img-src"]
    assert "https://assets.example-s3.test" in policy["media-src"]
    assert policy["default-src"] == ["'self'"]


def test_inline_scripts_of_the_build_are_allowed_by_their_hash_only(tmp_path):
    inline = b"window.__reactRouterContext = {};"
    (tmp_path / "index.html").write_bytes(
        b'<html><head><script type="module" src="/assets/app.js"></script>'
        b"<script>" + inline + b"</script></head></html>"
    )
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "index.html").write_bytes(b"<script>console.log(1)</script>")
    (tmp_path / "notes.txt").write_bytes(b"<script>not a page</script>")
    expected = "'sha256-" + base64.b64encode(hashlib.sha256(inline).digest()).decode() + "'"
    hashes = sh.inline_script_hashes(tmp_path)
    assert expected in hashes and len(hashes) == 2
    assert sh.inline_script_hashes(tmp_path / "no-build") == []


def test_development_servers_get_no_headers_production_builds_do(monkeypatch):
    inner = Starlette()
    monkeypatch.delenv("REFLEX_ENV_MODE", raising=False)
    monkeypatch.setenv("APP_ENV", "development")
    from core.settings import reset_settings_cache

    reset_settings_cache()
    assert sh.with_security_headers(inner) is inner
    monkeypatch.setenv("REFLEX_ENV_MODE", "prod")  # `reflex run --env prod`
    reset_settings_cache()
    assert isinstance(sh.with_security_headers(inner), sh.SecurityHeadersMiddleware)


# --- the production build in Chromium ----------------------------------------------------------


@pytest.mark.browser
def test_pages_static_files_and_routes_of_the_production_build_carry_the_headers(app_server):  # noqa: F811
    base = app_server.base_url
    page_answer = httpx.get(base + "/sign-in", follow_redirects=True, timeout=30)
    assert page_answer.status_code == 200
    policy = _assert_protected(page_answer.headers)
    # The built page's inline scripts are allowed by hash, none by 'unsafe-inline'.
    assert any(source.startswith("'sha256-") for source in policy["script-src"])
    script = re.search(r'<script[^>]+src="([^"]+\.js)"', page_answer.text) or re.search(
        r'<link[^>]+rel="modulepreload"[^>]+href="([^"]+\.js)"', page_answer.text
    )
    assert script, "the built page loads no script file"
    static = httpx.get(base + script.group(1), timeout=30)
    assert static.status_code == 200 and "javascript" in static.headers["content-type"]
    _assert_protected(static.headers)
    for answer in (
        httpx.get(base + "/healthz", timeout=30),
        httpx.get(base + "/no-such-page-here", timeout=30),
        httpx.post(base + "/webhooks/stripe", content=b"{}", timeout=30),
    ):
        _assert_protected(answer.headers)


def _watch_policy(page) -> list[str]:  # noqa: F811
    """Every Content-Security-Policy violation the page reports, and every console error."""
    problems: list[str] = []
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile))"
    )
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if "Content Security Policy" in message.text or "CSP violation" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return problems


@pytest.mark.browser
def test_a_signed_in_owner_uses_the_app_without_a_policy_violation(app_server, page):  # noqa: F811
    problems = _watch_policy(page)
    page.goto(app_server.base_url + "/sign-in")
    page.wait_for_load_state("networkidle")
    sign_in(page, app_server.base_url, "owner@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    expect(page.get_by_role("heading", name="Creative Studio", level=1)).to_be_visible()
    for path, heading in (
        ("/org/acme/team", "Team"),
        ("/org/acme/billing", "Billing"),
        ("/org/acme/settings", "Settings"),
    ):
        page.goto(app_server.base_url + path)
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        page.wait_for_load_state("networkidle")
    assert problems == []

    # The policy is enforced, not only sent: a script injected into the page does not run.
    page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__injected = true';
                   document.body.appendChild(s); }"""
    )
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__injected === undefined")
    assert any("script-src" in problem for problem in problems), problems


class _FramingSite(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):  # noqa: N802 - http.server's name
        body = f'<html><body><iframe src="{self.target}" width="800" height="600"></iframe>'
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.mark.browser
def test_another_site_cannot_frame_the_app(app_server, page):  # noqa: F811
    """A page on another port of the same host (same-site) frames the sign-in page."""
    _FramingSite.target = app_server.base_url + "/sign-in"
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _FramingSite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "frame-ancestors" in message.text else None,
    )
    try:
        page.goto(f"http://localhost:{server.server_address[1]}/")
        page.wait_for_timeout(3000)
        framed = page.frames[1] if len(page.frames) > 1 else None
        assert framed is not None
        assert "/sign-in" not in framed.url or framed.locator("input").count() == 0
        assert refused, "Chromium did not report the refused frame"
    finally:
        server.shutdown()
        server.server_close()
