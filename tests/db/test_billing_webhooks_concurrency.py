"""Two concurrent deliveries of the same webhook event on PostgreSQL: exactly one grant."""

from __future__ import annotations

import threading
import time

import pytest
from sqlmodel import Session, select

from models import CreditLedgerEntry, Organization, ProcessedWebhookEvent
from services import billing, credits
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.postgres]


def _event(event_id: str, cs: str) -> dict:
    return {
        "id": event_id,
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": cs,
                "mode": "payment",
                "payment_status": "paid",
                "customer": "cus_pg_1",
                "metadata": {"purpose": "top_up", "credits": "30", "blocks": "3"},
                "amount_total": 300,
            }
        },
    }


def _deliver_concurrently(engine, events: list[dict]) -> list:
    barrier = threading.Barrier(len(events))
    results: list = [None] * len(events)

    def run(index: int) -> None:
        with Session(engine, expire_on_commit=False) as session:
            barrier.wait()
            try:
                results[index] = billing.webhook_handle(
                    session=session, provider="stripe", event=events[index]
                )
                time.sleep(0.2)  # hold the transaction open so the other delivery overlaps
                session.commit()
            except Exception as exc:  # noqa: BLE001 - reported below
                session.rollback()
                results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.parametrize("rounds", range(5))
def test_same_event_twice_concurrently_grants_once(pg_engine, rounds):
    with Session(pg_engine) as session:
        org = Organization(slug=f"pg-{rounds}", name="PG", stripe_customer_id="cus_pg_1")
        session.add(org)
        session.commit()
        org_id = org.id
    results = _deliver_concurrently(pg_engine, [_event("evt_same", "cs_same")] * 2)
    assert not any(isinstance(r, Exception) for r in results), results
    assert sorted(r.duplicate for r in results) == [False, True]
    with Session(pg_engine) as session:
        assert credits.balance_get(session=session, org_id=org_id).balance == 30_000
        assert len(session.exec(select(CreditLedgerEntry)).all()) == 1
        assert len(session.exec(select(ProcessedWebhookEvent)).all()) == 1


def test_two_events_for_the_same_checkout_grant_once(pg_engine):
    with Session(pg_engine) as session:
        session.add(Organization(slug="pg-two", name="PG", stripe_customer_id="cus_pg_1"))
        session.commit()
    completed = _event("evt_completed", "cs_one")
    async_paid = _event("evt_async", "cs_one") | {
        "type": "checkout.session.async_payment_succeeded"
    }
    results = _deliver_concurrently(pg_engine, [completed, async_paid])
    assert not any(isinstance(r, Exception) for r in results), results
    with Session(pg_engine) as session:
        org = session.exec(select(Organization)).one()
        assert credits.ledger_sum(session=session, org_id=org.id) == 30_000
        assert len(session.exec(select(ProcessedWebhookEvent)).all()) == 2


def _orgs_with_subscriptions(engine) -> tuple[int, int]:
    from models import Subscription

    with Session(engine) as session:
        ids = []
        for name in ("acme", "rival"):
            org = Organization(slug=f"pg-{name}", name=name, stripe_customer_id=f"cus_{name}")
            session.add(org)
            session.flush()
            session.add(
                Subscription(
                    org_id=org.id,
                    plan_key="free",
                    status="active",
                    stripe_subscription_id=f"sub_{name}",
                )
            )
            ids.append(org.id)
        session.commit()
    return ids[0], ids[1]


@pytest.mark.parametrize(
    ("event_type", "obj", "reason"),
    [
        # PostgreSQL refuses the subscription id twice (unique) and a 7-letter currency
        # (varchar 3): before, both reached the database and answered 500.
        (
            "invoice.paid",
            {
                "id": "in_1",
                "customer": "cus_acme",
                "subscription": "sub_rival",
                "lines": {"data": [{"metadata": {"plan_key": "growth"}}]},
            },
            "belongs to another organization",
        ),
        (
            "customer.subscription.updated",
            {"id": "sub_rival", "customer": "cus_acme", "status": "active"},
            "belongs to another organization",
        ),
        (
            "checkout.session.completed",
            {
                "id": "cs_1",
                "mode": "payment",
                "payment_status": "paid",
                "customer": "cus_acme",
                "metadata": {"purpose": "top_up", "credits": "30"},
                "currency": "dollars",
            },
            "currency",
        ),
    ],
    ids=["invoice of another org", "subscription of another org", "currency too long"],
)
def test_unapplicable_events_are_recorded_and_the_transaction_still_commits(
    pg_engine, event_type, obj, reason
):
    from models import Subscription

    acme_id, rival_id = _orgs_with_subscriptions(pg_engine)
    event = {
        "id": "evt_bad",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": obj},
    }
    with Session(pg_engine, expire_on_commit=False) as session:
        outcome = billing.webhook_handle(session=session, provider="stripe", event=event)
        session.commit()  # the rolled-back SAVEPOINT left the transaction usable
    assert outcome.effect.startswith("ignored:") and reason in outcome.effect
    with Session(pg_engine) as session:
        row = session.exec(select(ProcessedWebhookEvent)).one()
        assert row.outcome == outcome.effect
        assert len(session.exec(select(CreditLedgerEntry)).all()) == 0
        subscriptions = {
            s.org_id: (s.stripe_subscription_id, s.status, s.plan_key)
            for s in session.exec(select(Subscription))
        }
        assert subscriptions == {
            acme_id: ("sub_acme", "active", "free"),
            rival_id: ("sub_rival", "active", "free"),
        }
