"""The browser tests use the live app and Chromium from `tests/live_app.py` (registered for the
whole test tree in tests/conftest.py); the helpers are re-exported for the test modules."""

from tests.live_app import (  # noqa: F401
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    SCREENSHOTS,
    AppServer,
    screenshot,
    sign_in,
)
