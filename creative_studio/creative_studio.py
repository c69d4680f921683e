"""The Reflex app. Importing the pages registers them; Reflex builds only what is imported here."""

import reflex as rx

from core.startup import gc_tune_for_serving, on_app_start
from creative_studio.api import build_api
from creative_studio.api.security_headers import with_security_headers
from creative_studio.api.v1 import build_v1_api
from creative_studio.pages import (  # noqa: F401
    account,
    analytics,
    api_logs,
    api_settings,
    assistant,
    billing,
    brand_kits,
    dev_outbox,
    help,
    index,
    intel,
    invite,
    local_checkout,
    not_found,
    operator,
    operator_analytics,
    operator_jobs,
    org_audit,
    org_new,
    password_reset,
    register,
    settings,
    sign_in,
    sso_settings,
    studio,
    team,
    verify_email,
)
from creative_studio.rate_limited_events import limit_event_rates
from services.help_center import help_articles_load_at_start

on_app_start()
help_articles_load_at_start()

app = rx.App(
    # The routes are mounted around Reflex's backend first; the headers then wrap everything,
    # the built frontend included (production only).
    api_transformer=[build_api(), build_v1_api(), with_security_headers],
    head_components=[rx.el.meta(name="viewport", content="width=device-width, initial-scale=1")],
)

# Per-address connection and event limits where Reflex receives the websocket.
limit_event_rates(app)


@app.register_lifespan_task
async def _tune_the_collector() -> None:
    gc_tune_for_serving()
