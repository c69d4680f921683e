"""Reflex configuration. Database and Redis URLs come from the environment (see core/settings.py)."""

import os
import sys

import reflex as rx

from core.db import normalize_database_url
from core.settings import DATA_DIR, PROJECT_ROOT, get_settings


def _cli_env_mode() -> str:
    """The --env of this `reflex run` / `reflex export` command line ("" when not given)."""
    for index, arg in enumerate(sys.argv):
        if arg.startswith("--env="):
            return arg.partition("=")[2]
        if arg == "--env" and index + 1 < len(sys.argv):
            return sys.argv[index + 1]
    return ""


# `reflex run --env prod` sets REFLEX_ENV_MODE=prod for its server processes only after it has
# read this file; the command's own process (which builds the frontend) must see the same mode,
# so that settings are production there too (see Settings: production unless APP_ENV says
# otherwise explicitly).
if _cli_env_mode() == "prod":
    os.environ.setdefault("REFLEX_ENV_MODE", "prod")

_settings = get_settings()

# Development hot reload watches the project tree; the SQLite database, assets and test
# screenshots change while the app runs and must not restart the backend.
os.environ.setdefault(
    "REFLEX_HOT_RELOAD_EXCLUDE_PATHS",
    os.pathsep.join(str(p) for p in (DATA_DIR, PROJECT_ROOT / "tests", PROJECT_ROOT / "catalog")),
)

# `reflex run --env prod` sets REFLEX_ENV_MODE=prod for its server processes.
_prod_build = os.environ.get("REFLEX_ENV_MODE", "") == "prod"


def _port(name: str, default: int, *, flag_excludes: str) -> int | None:
    """A port from FRONTEND_PORT / BACKEND_PORT; none when this process does not serve that half.

    `reflex run --backend-only` refuses a configured frontend port (and --frontend-only a
    backend port), so a split deployment must not get one from here.
    """
    if flag_excludes in sys.argv:
        return None
    return int(os.environ.get(name) or default)


def _public_urls() -> dict:
    """Where browsers reach this deployment: APP_BASE_URL (pages, websocket) and API_BASE_URL.

    Without these Reflex builds the frontend against http://localhost:<port>, so a deployed
    site would open its websocket to the visitor's own machine. In development the defaults
    (localhost ports) are right unless the base URLs are set explicitly.
    """
    split = "--backend-only" in sys.argv or "--frontend-only" in sys.argv
    if not (_settings.is_production or os.environ.get("APP_BASE_URL") or split):
        return {}
    urls = {"deploy_url": _settings.app_base_url.rstrip("/")}
    if _settings.is_production or os.environ.get("API_BASE_URL") or split:
        urls["api_url"] = _settings.backend_base_url
    return urls


def _state_manager_mode() -> str:
    """Redis when REDIS_URL is set (several workers); in memory for a one-process production
    build (the disk manager pickles every state to .states/ and stalls under load); the disk
    manager only for development, where it keeps tabs alive across hot reloads."""
    if _settings.redis_url:
        return "redis"
    return "memory" if (_prod_build or _settings.is_production) else "disk"


def _backend_host() -> dict:
    """Development listens on this machine only: its outbox and disk state are nobody else's
    business. BACKEND_HOST (or `reflex run --backend-host`) opens it up explicitly; production
    keeps Reflex's default (all interfaces, behind the deployment's proxy)."""
    if os.environ.get("BACKEND_HOST"):
        return {"backend_host": os.environ["BACKEND_HOST"]}
    if _settings.is_production:
        return {}
    return {"backend_host": "127.0.0.1"}


_frontend_port = _port("FRONTEND_PORT", 3000, flag_excludes="--backend-only")
_backend_port = _port("BACKEND_PORT", 8000, flag_excludes="--frontend-only")
# Reflex's default is "*": any site could drive a signed-in person's websocket. Only the
# deployment's own origins may. Ports given to `reflex run` on the command line reach the
# server processes as REFLEX_FRONTEND_PORT / REFLEX_BACKEND_PORT.
_cli_ports = tuple(
    int(value)
    for value in (
        *(sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a.endswith("-port")),
        os.environ.get("REFLEX_FRONTEND_PORT", ""),
        os.environ.get("REFLEX_BACKEND_PORT", ""),
    )
    if value.isdigit()
)
_origins = _settings.browser_origins(
    dev_ports=tuple(p for p in (_frontend_port, _backend_port, *_cli_ports) if p)
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
    frontend_port=_frontend_port,
    backend_port=_backend_port,
    cors_allowed_origins=_origins,
    state_manager_mode=_state_manager_mode(),
    **_public_urls(),
    **_backend_host(),
)
