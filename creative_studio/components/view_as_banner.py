"""The banner on org pages while a platform operator views the organization as its members."""

from __future__ import annotations

import reflex as rx

from state.operator import ViewAsBannerState


def view_as_banner() -> rx.Component:
    return rx.box(
        rx.cond(
            ViewAsBannerState.until != "",
            rx.callout(
                rx.flex(
                    rx.text(
                        "Viewing as the customer (read-only) until ",
                        rx.text.strong(ViewAsBannerState.until),
                        ". Every change is refused; start and stop are in their audit log.",
                    ),
                    rx.button(
                        "Stop viewing as",
                        size="1",
                        color_scheme="amber",
                        on_click=ViewAsBannerState.stop,
                    ),
                    spacing="3",
                    align="center",
                    wrap="wrap",
                ),
                icon="eye",
                color_scheme="amber",
                width="100%",
                role="status",
            ),
        ),
        on_mount=ViewAsBannerState.check,
        width="100%",
    )
