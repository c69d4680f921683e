"""The renewal job of local payment mode: ends every paid period that is over.

Stripe renews its own subscriptions and tells us by webhook; without Stripe this job plays that
part (`services.billing.subscriptions_renew_due`): the next period's invoice paid on the next
plan (a scheduled downgrade takes effect) with that cycle's credits granted once, or the org back
on Free after a cancel. With Stripe configured it does nothing.
"""

from __future__ import annotations

from typing import Any


def subscription_renewals() -> Any:
    from services.billing import subscriptions_renew_due

    return subscriptions_renew_due()
