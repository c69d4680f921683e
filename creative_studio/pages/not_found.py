"""Any address the app does not know: a styled 404 that says so and offers the way home."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.layout import centered_card


@rx.page(route="404", title="Page not found · Creative Studio")
def not_found_page() -> rx.Component:
    return centered_card(
        rx.heading("Page not found", size="6", as_="h1"),
        rx.text(
            "There is no page at this address. It may have been moved or mistyped; an "
            "organization that changed its address keeps redirecting for 90 days.",
            size="2",
            color=rx.color("gray", 11),
        ),
        rx.vstack(
            rx.link(
                rx.button("Go to my workspace", size="3", width="100%", tab_index=-1),
                href=routes.INDEX,
                width="100%",
                underline="none",
            ),
            rx.link("Help center", href=routes.HELP, size="2"),
            spacing="3",
            width="100%",
        ),
    )
