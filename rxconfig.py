"""Reflex configuration. Database and Redis URLs come from the environment (see core/settings.py)."""

import os

import reflex as rx

from core.db import normalize_database_url
from core.settings import get_settings

_settings = get_settings()

config = rx.Config(
    app_name="creative_studio",
    db_url=normalize_database_url(_settings.database_url),
    # With REDIS_URL set, Reflex keeps state in Redis so several backend workers can serve users.
    redis_url=_settings.redis_url or None,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(
                appearance="inherit", accent_color="iris", gray_color="slate", radius="medium"
            )
        )
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
    frontend_port=int(os.environ.get("FRONTEND_PORT", "3000")),
    backend_port=int(os.environ.get("BACKEND_PORT", "8000")),
)
