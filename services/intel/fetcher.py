"""Fetching a competitor's pages: bounded in time and size, polite, and never inward.

* Only ``http``/``https`` URLs on the default or a named port; no user names or passwords.
* The address guard (`services.net_guard`, shared with single sign-on) resolves the host name
  and refuses it when any address it resolves to is not a public one (private, loopback,
  link-local, shared, reserved, multicast...). The connection then goes to the address that
  was checked (the host name travels in the ``Host`` header and, for https, as SNI and
  certificate name), so a second DNS answer cannot point it elsewhere. Redirects are followed by hand, at most `MAX_REDIRECTS`, each target checked
  again. Host names listed in ``INTEL_ALLOWED_HOSTS`` skip the address check (tests, demos).
* robots.txt of each origin is read once per report and honoured for our user agent
  (`ROBOTS_AGENT`); a robots.txt that answers 4xx allows everything, one that cannot be read
  (5xx, a network error) refuses the origin, as RFC 9309 asks.
* A page is read as a stream: at most ``INTEL_FETCH_MAX_BYTES`` (the rest is cut and the
  source says "truncated") and within ``INTEL_FETCH_TIMEOUT_SECONDS`` in total.

Nothing here touches the database; `fetch_page` returns a `FetchResult` whatever happens.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from core.settings import get_settings
from services.net_guard import AddressRefused, Target, allowed_hosts_parse, request_parts, url_check

USER_AGENT = "CreativeStudioIntel/1.0 (+competitor research; honours robots.txt)"
ROBOTS_AGENT = "CreativeStudioIntel"
MAX_REDIRECTS = 5
ROBOTS_MAX_BYTES = 200_000
PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain")

FETCHED = "fetched"
TRUNCATED = "truncated"
REFUSED = "refused"
FAILED = "failed"


# The address guard is shared with single sign-on (services/net_guard.py); a refusal by it and
# one by robots.txt or a content type are the same outcome here: "refused", with the reason.
FetchRefused = AddressRefused


@dataclass
class FetchResult:
    url: str
    final_url: str = ""
    outcome: str = FAILED  # fetched | truncated | refused | failed
    http_status: int | None = None
    content_type: str = ""
    body: bytes = b""
    content_hash: str = ""
    message: str = ""  # for people: why it was refused or failed, or that it was cut
    redirects: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.outcome in (FETCHED, TRUNCATED)


def check_url(url: str) -> Target:
    """`url` checked by the shared address guard, with ``INTEL_ALLOWED_HOSTS`` allowed.

    Raises:
        FetchRefused: not http(s), credentials in it, an odd port, or a non-public address.
    """
    return url_check(url, allowed_hosts=allowed_hosts_parse(get_settings().intel_allowed_hosts))


class Fetcher:
    """Fetches the pages of one report (one client, one robots.txt per origin)."""

    def __init__(
        self,
        *,
        timeout_seconds: float | None = None,
        max_bytes: int | None = None,
        client: httpx.Client | None = None,
    ):
        settings = get_settings()
        self.timeout_seconds = timeout_seconds or settings.intel_fetch_timeout_seconds
        self.max_bytes = max_bytes or settings.intel_fetch_max_bytes
        self.client = client or httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout_seconds, connect=min(5.0, self.timeout_seconds)),
            headers={"User-Agent": USER_AGENT, "Accept": "text/html, text/plain;q=0.8"},
            trust_env=False,
        )
        self._robots: dict[str, RobotFileParser | str] = {}

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # --- one request ------------------------------------------------------------------------

    def _get(
        self, target: Target, limit: int, deadline: float
    ) -> tuple[httpx.Response, bytes, bool]:
        """GET a checked target; (response, body up to `limit`, cut?). Raises httpx errors."""
        url, headers, extensions = request_parts(target)
        request = self.client.build_request("GET", url, headers=headers, extensions=extensions)
        response = self.client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size, cut = 0, False
            if response.status_code < 300 or response.status_code >= 400:
                for chunk in response.iter_raw(65536):
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the page took too long to arrive")
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > limit:
                        cut = True
                        break
            body = b"".join(chunks)[:limit]
        finally:
            response.close()
        return response, body, cut

    def _follow(self, url: str, limit: int, deadline: float, result: FetchResult):
        """GET with redirects followed by hand, each target checked again."""
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            target = check_url(current)
            response, body, cut = self._get(target, limit, deadline)
            location = response.headers.get("location")
            if 300 <= response.status_code < 400 and location:
                current = urljoin(current, location)
                result.redirects.append(current)
                continue
            return current, response, body, cut
        raise FetchRefused(f"More than {MAX_REDIRECTS} redirects; the page was not fetched.")

    # --- robots.txt -------------------------------------------------------------------------

    def _robots_for(self, url: str) -> RobotFileParser | str:
        """The origin's robots rules, or a message saying why the origin is refused."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin in self._robots:
            return self._robots[origin]
        parser = RobotFileParser()
        deadline = time.monotonic() + self.timeout_seconds
        try:
            scratch = FetchResult(url=origin + "/robots.txt")
            _final, response, body, _cut = self._follow(
                origin + "/robots.txt", ROBOTS_MAX_BYTES, deadline, scratch
            )
            if response.status_code >= 500:
                rules: RobotFileParser | str = (
                    f"robots.txt of {parts.netloc} answered {response.status_code}, so the site "
                    "is not fetched (a site that cannot say what it allows is left alone)."
                )
            elif response.status_code >= 400:
                parser.parse([])
                rules = parser
            else:
                parser.parse(body.decode("utf-8", "replace").splitlines())
                rules = parser
        except FetchRefused as error:
            rules = str(error)
        except httpx.HTTPError as error:
            rules = f"robots.txt of {parts.netloc} could not be read ({_reason(error)})."
        self._robots[origin] = rules
        return rules

    # --- a page -----------------------------------------------------------------------------

    def fetch_page(self, url: str) -> FetchResult:
        """Fetch one page within the limits; never raises for what a site does."""
        result = FetchResult(url=url, final_url=url)
        deadline = time.monotonic() + self.timeout_seconds
        try:
            check_url(url)
            rules = self._robots_for(url)
            if isinstance(rules, str):
                raise FetchRefused(rules)
            if not rules.can_fetch(ROBOTS_AGENT, url):
                raise FetchRefused(
                    f"robots.txt of {urlsplit(url).netloc} disallows this page for crawlers, so "
                    "it was not fetched."
                )
            final, response, body, cut = self._follow(url, self.max_bytes, deadline, result)
            if final != url:
                rules = self._robots_for(final)
                if isinstance(rules, str) or not rules.can_fetch(ROBOTS_AGENT, final):
                    raise FetchRefused(
                        f"The page redirects to {final}, which robots.txt disallows; not fetched."
                    )
        except FetchRefused as error:
            result.outcome, result.message = REFUSED, str(error)[:500]
            return result
        except httpx.HTTPError as error:
            result.outcome = FAILED
            result.message = f"The page could not be fetched ({_reason(error)})."[:500]
            return result
        result.final_url = final
        result.http_status = response.status_code
        result.content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        result.body = body
        result.content_hash = hashlib.sha256(body).hexdigest()
        if response.status_code >= 400:
            result.outcome = FAILED
            result.message = f"The site answered HTTP {response.status_code}."
        elif result.content_type and result.content_type not in PAGE_TYPES:
            result.outcome = REFUSED
            result.message = (
                f"This is not a web page ({result.content_type}); only HTML and text are read."
            )
        elif cut:
            result.outcome = TRUNCATED
            result.message = (
                f"The page is larger than {self.max_bytes:,} bytes; only the first "
                f"{self.max_bytes:,} were read."
            )
        else:
            result.outcome = FETCHED
        return result


def _reason(error: Exception) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "it took too long to answer"
    if isinstance(error, httpx.ConnectError):
        return "the site could not be reached"
    return error.__class__.__name__


__all__ = [
    "FAILED",
    "FETCHED",
    "REFUSED",
    "TRUNCATED",
    "FetchRefused",
    "FetchResult",
    "Fetcher",
    "check_url",
]
