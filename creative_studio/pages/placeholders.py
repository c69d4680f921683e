"""Areas whose feature set lands in a later release: the shell with a one-line explanation.

When an area is built it gets its own module in pages/ and leaves PLACEHOLDER_AREAS.
"""

import reflex as rx

from core import routes
from creative_studio.layout import analytics_not_for_role, app_shell, coming_with
from state.session import SessionState

PLACEHOLDER_AREAS: dict[str, str] = {
}


def _make_page(area: routes.Area):
    def page() -> rx.Component:
        content = coming_with(area.label, PLACEHOLDER_AREAS[area.key])
        if area.key == "analytics":
            content = rx.cond(
                SessionState.allowed_actions.contains("analytics_view"),
                content,
                analytics_not_for_role(),
            )
        return app_shell(area.key, area.label, area.description, content)

    page.__name__ = f"{area.key}_page"
    return page


for _area in routes.AREAS:
    if _area.key in PLACEHOLDER_AREAS:
        rx.page(
            route=routes.org_page_route(_area.key),
            title=f"{_area.label} · Creative Studio",
            on_load=SessionState.load_org,
        )(_make_page(_area))
