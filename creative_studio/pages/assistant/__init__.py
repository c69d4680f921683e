"""/org/<slug>/assistant: the Marketing Assistant.

The page only assembles its sections; everything it shows or does lives in `state/assistant.py`.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.upgrade_modal import upgrade_modal
from creative_studio.layout import app_shell
from creative_studio.pages.assistant.chat import chat_panel
from creative_studio.pages.assistant.conversations import conversations_panel
from state.assistant import AssistantState


@rx.page(
    route=routes.org_page_route("assistant"),
    title="Marketing Assistant · Creative Studio",
    on_load=AssistantState.load,
)
def assistant_page() -> rx.Component:
    return app_shell(
        "assistant",
        "Marketing Assistant",
        "Chat about campaigns and copy in your brand's voice. Messages are included in your "
        "plan and cost no credits; a daily message allowance applies.",
        rx.flex(
            conversations_panel(),
            chat_panel(),
            direction=rx.breakpoints(initial="column", md="row"),
            spacing="4",
            width="100%",
            align="start",
        ),
        upgrade_modal(
            AssistantState.offer, AssistantState.upgrade_open, AssistantState.set_upgrade_open
        ),
    )
