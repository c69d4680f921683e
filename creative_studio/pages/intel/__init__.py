"""/org/<slug>/intel: Competitor Intel. The page only assembles its sections; everything they
show or do lives in `state/intel.py`."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.layout import app_shell
from creative_studio.pages.intel.report import report_card
from creative_studio.pages.intel.request import history_card, request_card
from state.intel import IntelState


@rx.page(
    route=routes.org_page_route("intel"),
    title="Competitor Intel · Creative Studio",
    on_load=IntelState.load,
)
def intel_page() -> rx.Component:
    return app_shell(
        "intel",
        "Competitor Intel",
        "Sourced reports on competitors' positioning, pricing and messaging.",
        request_card(),
        report_card(),
        history_card(),
    )
