"""HTTP client errors to catch around outbound calls (OAuth token endpoints, discovery)."""

from __future__ import annotations

import httpx

try:  # Authlib's httpx integration runs on httpx2 when it is installed
    import httpx2

    HTTP_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, httpx2.HTTPError, OSError)
except ImportError:  # pragma: no cover - depends on the installed Authlib
    HTTP_ERRORS = (httpx.HTTPError, OSError)
