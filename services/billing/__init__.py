"""Billing: checkout and portal, webhook fulfilment, spend controls and pools, the Billing
page read model.

One module per concern; this package re-exports the names callers use, so
`from services import billing; billing.checkout_start(...)` keeps working:

- `common`: catalog terms (`top_up_terms`, `format_money`), the org and owner checks, the
  billing-profile rule of the Free plan, `payments_mode`.
- `checkout`: customer, checkout, Customer Portal, local payment mode.
- `subscriptions`: one subscription per org: plan change preview and apply (upgrade prorated,
  downgrade and cancel at period end, resume), local-mode renewals.
- `webhooks`: `webhook_receive` / `webhook_handle` and the ``_on_*`` event handlers (the
  fulfilment and idempotency invariants are written in its docstring).
- `spend_controls`: monthly cap, low-balance alert, project pools.
- `overview`: `billing_overview`, `credit_rates`, `spend_this_cycle` and their views.

A test that replaces a function patches it where it is used (the submodule, or the module it
is called through, e.g. `services.credits`), not on this package.

Transactions: functions taking ``session`` flush and never commit, except
`webhook_receive` and `local_checkout_confirm`, which own their unit of work.
"""

from __future__ import annotations

from services.billing.checkout import (
    LocalCheckoutView,
    billing_customer_ensure,
    checkout_start,
    local_checkout_confirm,
    local_checkout_view,
    portal_start,
    top_up_quote,
)
from services.billing.common import (
    FREE_PLAN_KEY,
    MAX_SPEND_CAP_CREDITS,
    MC,
    PROVIDER_STRIPE,
    TopUpTerms,
    _ts,
    billing_profile_require,
    billing_profile_required,
    format_money,
    payments_mode,
    top_up_terms,
)
from services.billing.overview import (
    BillingOverview,
    InvoiceView,
    ModelRate,
    PlanOffer,
    PoolView,
    ReceiptView,
    ToolRate,
    billing_overview,
    credit_rates,
    invoice_receipt,
    spend_this_cycle,
)
from services.billing.spend_controls import (
    pool_allocate_credits,
    pool_return_credits,
    spend_controls_set,
)
from services.billing.subscriptions import (
    PlanChangePreview,
    live_subscription,
    plan_change,
    plan_change_preview,
    subscriptions_renew_due,
)
from services.billing.webhooks import WebhookOutcome, webhook_handle, webhook_receive
from services.providers.payments import StripeProvider, WebhookSignatureError

__all__ = [
    "FREE_PLAN_KEY",
    "MAX_SPEND_CAP_CREDITS",
    "MC",
    "PROVIDER_STRIPE",
    "BillingOverview",
    "InvoiceView",
    "LocalCheckoutView",
    "ModelRate",
    "PlanOffer",
    "PlanChangePreview",
    "PoolView",
    "ReceiptView",
    "StripeProvider",
    "ToolRate",
    "TopUpTerms",
    "WebhookOutcome",
    "WebhookSignatureError",
    "_ts",
    "billing_customer_ensure",
    "billing_overview",
    "billing_profile_require",
    "billing_profile_required",
    "checkout_start",
    "credit_rates",
    "format_money",
    "invoice_receipt",
    "live_subscription",
    "local_checkout_confirm",
    "local_checkout_view",
    "payments_mode",
    "plan_change",
    "plan_change_preview",
    "pool_allocate_credits",
    "pool_return_credits",
    "portal_start",
    "spend_controls_set",
    "spend_this_cycle",
    "subscriptions_renew_due",
    "top_up_quote",
    "top_up_terms",
    "webhook_handle",
    "webhook_receive",
]
