"""The browser tests use the live app and Chromium from `tests/live_app.py` (registered for the
whole test tree in tests/conftest.py); the helpers are re-exported for the test modules.

`no_hydration_errors` (autouse) fails any browser test during which a page logged a React
hydration error or an invalid nesting such as a <p> inside a <p>."""

from tests.live_app import (  # noqa: F401
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    SCREENSHOTS,
    AppServer,
    no_hydration_errors,
    screenshot,
    sign_in,
)
