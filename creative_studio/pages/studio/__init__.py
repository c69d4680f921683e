"""Creative Studio (/org/<slug>/studio): pick a model, write a prompt, see the estimate, run it,
follow it live. This entry only assembles the sections; the state is `state/studio.py`."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.upgrade_modal import upgrade_modal
from creative_studio.layout import app_shell
from creative_studio.pages.studio.banners import swap_banner, viewer_note
from creative_studio.pages.studio.composer import composer
from creative_studio.pages.studio.history import history
from creative_studio.pages.studio.picker import models_card
from state.studio import StudioState


@rx.page(
    route=routes.org_page_route("studio"),
    title="Creative Studio · Creative Studio",
    on_load=StudioState.load,  # the organization's load too (one event, see OrgPageState._open)
)
def studio_page() -> rx.Component:
    return app_shell(
        "studio",
        "Creative Studio",
        "Generate copy, images and video with your team's models.",
        swap_banner(),
        viewer_note(),
        # On a phone the composer (and its Run button) comes first, above the long model list;
        # side by side from the md breakpoint.
        rx.flex(
            models_card(),
            composer(),
            direction=rx.breakpoints(initial="column-reverse", md="row"),
            spacing="4",
            width="100%",
            align=rx.breakpoints(initial="stretch", md="start"),
        ),
        history(),
        upgrade_modal(StudioState.offer, StudioState.upgrade_open, StudioState.set_upgrade_open),
    )
