"""Plan changes on PostgreSQL: the upgrade's prorated top-up and each renewal are granted once,
even when the events or the renewal job run twice at the same time."""

from __future__ import annotations

import copy
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from core import clock
from models import CreditLedgerEntry, Invoice, Organization, Subscription
from services import billing, credits
from services.providers.payments import SubscriptionChange, payment_provider
from tests.conftest import requires_postgres
from tests.factories import subscribe_locally

pytestmark = [requires_postgres, pytest.mark.postgres]

C = 1000
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def starter_org(pg_engine):
    return subscribe_locally(
        pg_engine,
        email="owner@pg-subs.test",
        slug="pg-subs",
        name="PG Subs",
        plan_key="starter",
        at=T0,
    )


def _balance(engine, org_id):
    with Session(engine) as session:
        return credits.balance_get(session=session, org_id=org_id).balance


def _together(functions) -> list:
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)

    def run(index):
        barrier.wait()
        try:
            results[index] = functions[index]()
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(functions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_upgrade_mid_cycle_on_postgres(pg_engine, starter_org):
    org_id, owner_id = starter_org
    assert _balance(pg_engine, org_id) == (50 + 500) * C
    clock.freeze(T0 + timedelta(days=15))
    message = billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="growth")
    assert message.startswith("Upgraded to Growth: $40.00 charged now, +1,250 credits added")
    assert _balance(pg_engine, org_id) == (50 + 500 + 1250) * C
    with Session(pg_engine) as session:
        assert session.get(Organization, org_id).plan_key == "growth"
        amounts = session.exec(select(Invoice.amount_cents).order_by(col(Invoice.id))).all()
        assert amounts == [1900, 4000]
        assert credits.ledger_sum(session=session, org_id=org_id) == (50 + 500 + 1250) * C


def test_the_upgrade_invoice_delivered_twice_at_once_tops_up_once(pg_engine, starter_org):
    org_id, _owner_id = starter_org
    moment = T0 + timedelta(days=15)
    clock.freeze(moment)
    provider = payment_provider()
    with Session(pg_engine) as session:
        org = session.get(Organization, org_id)
        sub = session.exec(select(Subscription).where(Subscription.org_id == org_id)).one()
        change = SubscriptionChange(
            org_id=org_id,
            customer_id=org.stripe_customer_id,
            subscription_id=sub.stripe_subscription_id,
            kind="upgrade",
            from_plan_key="starter",
            from_plan_name="Starter",
            from_price_cents=1900,
            to_plan_key="growth",
            to_plan_name="Growth",
            to_price_cents=9900,
            period_start=int(T0.timestamp()),
            period_end=int((T0 + timedelta(days=30)).timestamp()),
            charge_cents=4000,
        )
    _updated, paid = provider.subscription_events(change, now=int(moment.timestamp()))
    twin = copy.deepcopy(paid) | {"id": paid["id"] + "_ok", "type": "invoice.payment_succeeded"}
    results = _together(
        [
            lambda: billing.subscriptions._deliver(provider, [paid]),
            lambda: billing.subscriptions._deliver(provider, [twin]),
        ]
    )
    assert not any(isinstance(r, Exception) for r in results), results
    assert _balance(pg_engine, org_id) == (50 + 500 + 1250) * C
    with Session(pg_engine) as session:
        top_ups = session.exec(
            select(CreditLedgerEntry).where(
                col(CreditLedgerEntry.idempotency_key).like("plan-change:%")
            )
        ).all()
        assert len(top_ups) == 1


def test_two_renewal_runs_at_once_renew_once(pg_engine, starter_org):
    org_id, owner_id = starter_org
    clock.freeze(T0 + timedelta(days=5))
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="growth")
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="starter")  # at the end
    before = _balance(pg_engine, org_id)
    clock.freeze(T0 + timedelta(days=30, seconds=1))
    results = _together([billing.subscriptions_renew_due, billing.subscriptions_renew_due])
    assert not any(isinstance(r, Exception) for r in results), results
    time.sleep(0.1)
    # the cycle's unused monthly credits expired once, Starter's 500 granted once
    assert _balance(pg_engine, org_id) == (50 + 500) * C
    with Session(pg_engine) as session:
        expiries = session.exec(
            select(CreditLedgerEntry).where(CreditLedgerEntry.kind == "expiry")
        ).all()
        assert [-e.amount_millicredits for e in expiries] == [before - 50 * C]
    with Session(pg_engine) as session:
        sub = session.exec(select(Subscription).where(Subscription.org_id == org_id)).one()
        assert (sub.plan_key, sub.scheduled_plan_key) == ("starter", None)
        renewals = session.exec(
            select(Invoice).where(Invoice.org_id == org_id, Invoice.amount_cents == 1900)
        ).all()
        assert len(renewals) == 2  # the first month and the renewal, not three


def test_a_failed_payment_locks_runs_until_a_later_payment_on_postgres(pg_engine, starter_org):
    from models import User
    from services import policy

    org_id, owner_id = starter_org
    provider = payment_provider()
    with Session(pg_engine) as session:
        org = session.get(Organization, org_id)
        sub = session.exec(select(Subscription).where(Subscription.org_id == org_id)).one()
        ids = (sub.stripe_subscription_id, org.stripe_customer_id)
    renewal = T0 + timedelta(days=30)

    def invoice_event(event_id, event_type, created):
        start = int(renewal.timestamp())
        return {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(created.timestamp()),
            "data": {
                "object": {
                    "id": "in_pg_renewal",
                    "object": "invoice",
                    "customer": ids[1],
                    "subscription": ids[0],
                    "billing_reason": "subscription_cycle",
                    "amount_paid": 1900,
                    "amount_due": 1900,
                    "currency": "usd",
                    "lines": {
                        "data": [
                            {
                                "amount": 1900,
                                "metadata": {"plan_key": "starter"},
                                "period": {"start": start, "end": start + 30 * 86400},
                            }
                        ]
                    },
                }
            },
        }

    def can_run() -> bool:
        with Session(pg_engine) as session:
            actor = policy.actor_for(
                session=session, user=session.get(User, owner_id), org_id=org_id
            )
            target = policy.target_for(session=session, org_id=org_id)
            assert policy.can(actor, policy.Action.billing_view, target).allowed  # reading stays
            return policy.can(actor, policy.Action.tool_run, target).allowed

    failed = invoice_event("evt_pg_fail", "invoice.payment_failed", renewal)
    assert billing.subscriptions._deliver(provider, [failed]) == ["past_due"]
    assert not can_run()
    paid = invoice_event("evt_pg_paid", "invoice.paid", renewal + timedelta(days=1))
    assert billing.subscriptions._deliver(provider, [paid, failed]) == [
        "monthly_credits_granted",
        "duplicate",
    ]
    assert can_run()
