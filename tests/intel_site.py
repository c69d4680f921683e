"""A loopback "competitor site" for Competitor Intel tests: a real HTTP server in a thread.

Pages: ``/`` (home), ``/pricing``, ``/about``, ``/robots.txt`` (disallows ``/private``),
``/private``, ``/to-private`` (a redirect to a link-local address), ``/slow`` (answers after
`SLOW_SECONDS`), ``/huge`` (10 MB). `CompetitorSite.version` switches what the pages say:
``v1``; ``v1b`` (the same with another testimonial rotated in); ``v2`` (a new headline and a
new price tier).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_SECONDS = 3.0
HUGE_BYTES = 10 * 1024 * 1024

TESTIMONIALS = {
    "v1": "“Rival changed how our team ships campaigns.” — Dana, CMO",
    "v1b": "“We doubled our output in a month with Rival.” — Lee, Growth lead",
    "v2": "“Best tool we bought this year.” — Sam, Founder",
}
HEADLINES = {
    "v1": "Campaigns that ship themselves",
    "v1b": "Campaigns that ship themselves",
    "v2": "The AI marketing platform for busy teams",
}


def home_page(version: str) -> str:
    return f"""<!doctype html><html><head><title>Rival · Marketing automation</title>
<meta name="description" content="Rival helps marketing teams plan, write and ship campaigns in one platform.">
<script>window.tracking = "ignore me";</script><style>body {{ color: red; }}</style></head>
<body><nav><a href="/pricing">Pricing</a><a href="/about">About</a></nav>
<main>
<h1>{HEADLINES[version]}</h1>
<p>Rival is the all-in-one platform built for marketing teams that want fewer meetings and more launches.</p>
<h2>Automated campaign calendars</h2>
<p>Plan a quarter of campaigns in an afternoon with automation.</p>
<h2>Brand-safe copy at scale</h2>
<p>Trusted by 4,000+ teams in 30 countries.</p>
<div class="testimonial"><p>{TESTIMONIALS[version]}</p></div>
<blockquote>{TESTIMONIALS[version]}</blockquote>
<p>Read our blog and join the weekly webinar on campaign automation.</p>
</main>
<footer><a href="https://www.linkedin.com/company/rival">LinkedIn</a>
<a href="https://x.com/rival">X</a></footer>
</body></html>"""


def pricing_page(version: str) -> str:
    scale = (
        """<div class="tier"><h3>Scale</h3><div class="price">$199/mo</div>
<ul><li>Unlimited seats</li><li>Dedicated manager</li></ul></div>"""
        if version == "v2"
        else ""
    )
    return f"""<!doctype html><html><head><title>Pricing · Rival</title></head><body><main>
<h1>Simple pricing</h1>
<div class="tier"><h3>Starter</h3><div class="price">$29/mo</div>
<ul><li>3 seats</li><li>Campaign calendar</li></ul></div>
<div class="tier"><h3>Pro</h3><div class="price">$79/mo</div>
<ul><li>10 seats</li><li>Automation</li><li>Brand kit</li></ul></div>
{scale}
<div class="tier"><h3>Enterprise</h3><p>Contact sales for custom pricing.</p></div>
<div class="testimonial"><p>{TESTIMONIALS[version]}</p></div>
</main></body></html>"""


ABOUT = """<!doctype html><html><head><title>About · Rival</title></head><body><main>
<h1>About Rival</h1>
<p>We make marketing automation for teams of five to five hundred. Rival helps brands plan campaigns faster.</p>
<p>Founded in 2019, we serve customers in 30 countries.</p>
</main></body></html>"""

ROBOTS = "User-agent: *\nDisallow: /private\n"


class CompetitorSite:
    def __init__(self) -> None:
        self.version = "v1"
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:  # quiet
                return

            def _send(self, status: int, body: bytes, content_type: str = "text/html") -> None:
                self.send_response(status)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?")[0]
                site.requests.append(path)
                if path == "/":
                    self._send(200, home_page(site.version).encode())
                elif path == "/pricing":
                    self._send(200, pricing_page(site.version).encode())
                elif path == "/about":
                    self._send(200, ABOUT.encode())
                elif path == "/robots.txt":
                    self._send(200, ROBOTS.encode(), "text/plain")
                elif path == "/private":
                    self._send(200, b"<html><body><main><h1>Secret plans</h1></main></body></html>")
                elif path == "/to-private":
                    self.send_response(302)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/slow":
                    time.sleep(SLOW_SECONDS)
                    self._send(200, b"<html><body><h1>Finally</h1></body></html>")
                elif path == "/huge":
                    chunk = b"<p>" + b"x" * 1020 + b"</p>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(HUGE_BYTES))
                    self.end_headers()
                    try:
                        sent = 0
                        while sent < HUGE_BYTES:
                            self.wfile.write(chunk)
                            sent += len(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                else:
                    self._send(404, b"<html><body>Not found</body></html>")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path


@contextmanager
def competitor_site() -> Iterator[CompetitorSite]:
    site = CompetitorSite()
    thread = threading.Thread(target=site.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.server.shutdown()
        site.server.server_close()
