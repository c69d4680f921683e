"""Payment webhooks: POST /webhooks/stripe (Stripe, and the same shape from local payment mode).

The raw body is verified with the Stripe-Signature header before anything is parsed.
Answers are JSON:
- 200 when the event was applied, was already applied, or was recorded as ignored because
  it cannot be applied (`effect` says "ignored:<reason>": a malformed field, a subscription
  of another organization...); retrying such an event would never succeed, so Stripe must
  not retry it for days;
- 400 for a bad signature, a stale timestamp, or a signed body that is not an event at all
  (a JSON array, no id or type): nothing is recorded;
- 500 (without details) only when applying failed for a reason a retry may cure (the
  database); nothing was recorded, so Stripe's retry applies the event.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from core import routes
from services import billing
from services.errors import DomainError
from services.providers.payments import WebhookSignatureError

STRIPE_WEBHOOK = routes.API_STRIPE_WEBHOOK
MAX_WEBHOOK_BYTES = 1_000_000

logger = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def stripe_webhook(request: Request) -> JSONResponse:
    payload = await request.body()
    if len(payload) > MAX_WEBHOOK_BYTES:
        return _error(413, "payload_too_large", "The webhook body is too large.")
    signature = request.headers.get("stripe-signature", "")
    try:
        outcome = await run_in_threadpool(
            billing.webhook_receive, payload=payload, signature_header=signature
        )
    except WebhookSignatureError as exc:
        return _error(400, exc.code, exc.message)
    except DomainError as exc:
        return _error(400, exc.code, exc.message)
    except Exception:
        logger.exception("webhook fulfilment failed; the provider will retry")
        return _error(500, "webhook_failed", "The event could not be applied; retry later.")
    return JSONResponse(
        {
            "received": True,
            "event_id": outcome.event_id,
            "duplicate": outcome.duplicate,
            "effect": outcome.effect,
        }
    )
