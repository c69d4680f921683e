"""Reflex configuration. Database and Redis URLs come from the environment (see core/settings.py)."""

import os

import reflex as rx

from core.db import normalize_database_url
from core.settings import DATA_DIR, PROJECT_ROOT, get_settings

_settings = get_settings()

# Development hot reload watches the project tree; the SQLite database, assets and test
# screenshots change while the app runs and must not restart the backend.
os.environ.setdefault(
    "REFLEX_HOT_RELOAD_EXCLUDE_PATHS",
    os.pathsep.join(str(p) for p in (DATA_DIR, PROJECT_ROOT / "tests", PROJECT_ROOT / "catalog")),
)

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
