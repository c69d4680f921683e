"""Absolute URLs of the app's two halves, and the one way to leave the single-page app.

`rx.redirect` routes client-side when the backend shares the frontend's origin (production
mode) and then never reaches the server; backend HTTP routes (the session cookie handoff,
OAuth starts, Stripe Checkout) need a full page load: `navigate`.
"""

from __future__ import annotations

import json

import reflex as rx

from core.settings import get_settings


def backend_url(path: str) -> str:
    """Absolute URL of a plain HTTP route on the backend (its own port in development)."""
    return f"{rx.config.get_config().api_url.rstrip('/')}{path}"


def frontend_url(path: str) -> str:
    """Absolute URL of a page, as the browser reaches it."""
    base = rx.config.get_config().deploy_url or get_settings().app_base_url
    return f"{base.rstrip('/')}{path}"


def navigate(url: str):
    """Full page navigation to `url` (a backend route, or another site such as Checkout)."""
    return rx.call_script(f"window.location.assign({json.dumps(url)})")
