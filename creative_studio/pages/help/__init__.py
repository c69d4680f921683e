"""The help center, platform status and support pages (public, in-app and for operators)."""

from creative_studio.pages.help import in_app, operator_support, public, status  # noqa: F401
