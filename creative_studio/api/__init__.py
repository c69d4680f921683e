"""Plain HTTP routes mounted next to Reflex's backend (auth handoff, webhooks, API, assets)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from core import routes
from creative_studio.api import assets as asset_routes
from creative_studio.api import auth_routes, billing_routes, connections_routes, google_routes
from creative_studio.api import sso_routes as sso_api


async def health(_request):
    from starlette.responses import JSONResponse

    return JSONResponse({"status": "ok"})


def build_api() -> Starlette:
    return Starlette(
        routes=[
            Route(routes.API_HEALTH, health, methods=["GET"]),
            Route(asset_routes.ASSET_ROUTE, asset_routes.serve_asset, methods=["GET"]),
            Route(routes.API_AUTH_SESSION, auth_routes.session_handoff, methods=["GET"]),
            Route(routes.API_AUTH_SIGN_OUT, auth_routes.sign_out, methods=["GET"]),
            Route(routes.API_SIGN_IN_START, auth_routes.sign_in_start, methods=["GET"]),
            Route(google_routes.GOOGLE_START, google_routes.google_start, methods=["GET"]),
            Route(google_routes.GOOGLE_CALLBACK, google_routes.google_callback, methods=["GET"]),
            Route(sso_api.SSO_START, sso_api.sso_start, methods=["GET"]),
            Route(sso_api.SSO_TEST, sso_api.sso_test, methods=["GET"]),
            Route(sso_api.SSO_CALLBACK, sso_api.sso_callback, methods=["GET"]),
            Route(billing_routes.STRIPE_WEBHOOK, billing_routes.stripe_webhook, methods=["POST"]),
            Route(
                connections_routes.CONNECTIONS_START,
                connections_routes.connections_start,
                methods=["GET"],
            ),
            Route(
                connections_routes.CONNECTIONS_CALLBACK,
                connections_routes.connections_callback,
                methods=["GET"],
            ),
        ]
    )
