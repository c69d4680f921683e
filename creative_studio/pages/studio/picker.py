"""The models card: every model by modality; a locked one opens the upgrade offer."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.model_picker import model_picker
from creative_studio.components.page import card
from state.studio import StudioState


def models_card() -> rx.Component:
    return card(
        "Models",
        model_picker(
            [
                ("Text", StudioState.text_models),
                ("Image", StudioState.image_models),
                ("Video", StudioState.video_models),
            ],
            StudioState.selected_key,
            StudioState.pick_model,
        ),
        spacing="3",
        max_width=rx.breakpoints(initial="100%", md="22rem"),
        flex_shrink="0",
    )
