"""One subscription per organization, in local payment mode through the webhook path: an upgrade
charges and grants only the prorated difference once, a downgrade or cancel waits for the end of
the paid period, renewals grant each cycle once, and replayed or reordered events change nothing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from sqlmodel import Session, col, select

from core import clock
from core.clock import as_utc
from core.settings import reset_settings_cache
from models import CreditLedgerEntry, Invoice, Organization, Subscription
from services import billing, credits, orgs
from services.errors import ValidationFailed
from services.providers.payments import LocalPaymentProvider, payment_provider
from tests.factories import make_user, subscribe_locally

C = 1000
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def starter_org(engine):
    """An org that subscribed to Starter through the local checkout at T0 (period: 30 days)."""
    return subscribe_locally(
        engine, email="owner@subs.test", slug="subs", name="Subs", plan_key="starter", at=T0
    )


def _state(engine, org_id):
    with Session(engine, expire_on_commit=False) as session:
        org = session.get(Organization, org_id)
        sub = session.exec(select(Subscription).where(Subscription.org_id == org_id)).one()
        balance = credits.balance_get(session=session, org_id=org_id).balance
        invoices = list(
            session.exec(select(Invoice).where(Invoice.org_id == org_id).order_by(col(Invoice.id)))
        )
        return org, sub, balance, invoices


def _expired(engine, org_id) -> list[int]:
    with Session(engine) as session:
        return [
            -e.amount_millicredits
            for e in session.exec(
                select(CreditLedgerEntry).where(
                    CreditLedgerEntry.org_id == org_id, CreditLedgerEntry.kind == "expiry"
                )
            )
        ]


def _preview(engine, org_id, owner_id, plan_key):
    with Session(engine) as session:
        from models import User

        return billing.plan_change_preview(
            session=session, actor=session.get(User, owner_id), org_id=org_id, plan_key=plan_key
        )


def test_new_free_org_has_its_first_monthly_credits(engine, starter_org):
    org_id, _owner = starter_org
    with Session(engine) as session:
        keys = [
            e.idempotency_key
            for e in session.exec(
                select(CreditLedgerEntry).where(CreditLedgerEntry.org_id == org_id)
            )
        ]
    assert f"monthly-grant:{org_id}:2026-03" in keys  # the monthly job's key: never twice
    _org, sub, balance, _inv = _state(engine, org_id)
    assert balance == (50 + 500) * C  # Free's first 50, then Starter's paid invoice
    assert as_utc(sub.current_period_end) == T0 + timedelta(days=30)


def test_the_monthly_job_does_not_grant_a_new_free_org_twice(engine):
    from services.housekeeping import monthly_credit_grants

    clock.freeze(T0)
    with Session(engine, expire_on_commit=False) as session:
        owner = make_user(session, "free@subs.test", "free")
        org = orgs.org_create(session=session, owner=owner, name="Free one", slug="free-one")
        session.commit()
    assert _state(engine, org.id)[2] == 50 * C  # usable as soon as a billing profile exists
    assert monthly_credit_grants(now=T0 + timedelta(hours=1)).items == 0
    assert _state(engine, org.id)[2] == 50 * C
    assert monthly_credit_grants(now=T0 + timedelta(days=31)).items == 1  # April's


def test_upgrade_mid_cycle_charges_and_grants_the_prorated_difference_once(engine, starter_org):
    org_id, owner_id = starter_org
    halfway = T0 + timedelta(days=15)
    clock.freeze(halfway)
    preview = _preview(engine, org_id, owner_id, "growth")
    assert preview.kind == "upgrade"
    assert preview.charge_cents == 4000  # ($99 - $19) for half the period
    assert preview.credits == 1250  # (3,000 - 500) for half the period
    assert preview.lines[0].startswith("Charged now: $40.00")
    assert "March 31, 2026" in preview.lines[1]

    message = billing.plan_change(
        actor_user_id=owner_id, org_id=org_id, plan_key="growth", quoted_at=halfway
    )
    assert message.startswith("Upgraded to Growth: $40.00 charged now, +1,250 credits added")
    org, sub, balance, invoices = _state(engine, org_id)
    assert org.plan_key == sub.plan_key == "growth"
    assert balance == (50 + 500 + 1250) * C
    assert [(i.amount_cents, i.credits) for i in invoices] == [(1900, 500), (4000, 1250)]
    # one subscription, the same period: the spend-cap window does not restart
    assert sub.stripe_subscription_id.startswith("sub_local_")
    assert (as_utc(sub.current_period_start), as_utc(sub.current_period_end)) == (
        T0,
        T0 + timedelta(days=30),
    )
    with Session(engine) as session:
        assert billing.overview._cycle_start(sub) == T0

    # choosing Growth again changes nothing; a second checkout is refused
    with pytest.raises(ValidationFailed, match="already on Growth"):
        billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="growth")
    with Session(engine) as session:
        from models import User

        with pytest.raises(ValidationFailed, match="already has a subscription"):
            billing.checkout_start(
                session=session,
                actor=session.get(User, owner_id),
                org_id=org_id,
                purpose="upgrade",
                plan_key="scale",
                billing_url="http://app.test/b",
            )
    assert _state(engine, org_id)[2] == (50 + 500 + 1250) * C


def test_replayed_and_reordered_upgrade_events_change_nothing(engine, starter_org):
    org_id, owner_id = starter_org
    clock.freeze(T0 + timedelta(days=15))
    provider = payment_provider()
    with Session(engine) as session:
        org = session.get(Organization, org_id)
        sub = billing.live_subscription(session, org)
        change = billing.subscriptions.SubscriptionChange(
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
    updated, paid = provider.subscription_events(
        change, now=int((T0 + timedelta(days=15)).timestamp())
    )
    # the invoice first, then the subscription; then both again, and the invoice under the
    # other event type Stripe sends for the same payment
    effects = billing.subscriptions._deliver(provider, [paid, updated, paid, updated])
    assert effects == ["plan_upgraded_prorated", "subscription_updated", "duplicate", "duplicate"]
    twin = json.loads(json.dumps(paid)) | {
        "id": paid["id"] + "_twin",
        "type": "invoice.payment_succeeded",
    }
    assert billing.subscriptions._deliver(provider, [twin]) == ["plan_upgraded_prorated"]
    org, sub, balance, invoices = _state(engine, org_id)
    assert org.plan_key == "growth"
    assert balance == (50 + 500 + 1250) * C
    assert len(invoices) == 2


def test_downgrade_waits_for_the_period_end_and_can_be_undone(engine, starter_org):
    org_id, owner_id = starter_org
    clock.freeze(T0 + timedelta(days=10))
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="growth")
    org, sub, balance_after_upgrade, _ = _state(engine, org_id)
    preview = _preview(engine, org_id, owner_id, "starter")
    assert preview.kind == "downgrade" and preview.charge_cents == 0
    assert "Starter from March 31, 2026" in preview.lines[1]
    assert "Switch to Starter from March 31, 2026" == preview.confirm_label

    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="starter")
    org, sub, balance, invoices = _state(engine, org_id)
    assert (org.plan_key, sub.scheduled_plan_key) == ("growth", "starter")
    assert balance == balance_after_upgrade and len(invoices) == 2  # nothing charged or granted

    # Growth again before the end: the downgrade is undone, nothing charged
    assert _preview(engine, org_id, owner_id, "growth").kind == "resume"
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="growth")
    assert _state(engine, org_id)[1].scheduled_plan_key is None
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="starter")

    # before the end the renewal job does nothing; at the end Starter renews, granted once
    assert billing.subscriptions_renew_due(now=T0 + timedelta(days=29)).items == 0
    clock.freeze(T0 + timedelta(days=30, minutes=5))
    assert billing.subscriptions_renew_due().items == 1
    assert billing.subscriptions_renew_due().items == 0
    org, sub, balance, invoices = _state(engine, org_id)
    assert (org.plan_key, sub.scheduled_plan_key) == ("starter", None)
    assert as_utc(sub.current_period_end) == T0 + timedelta(days=60)
    # the finished cycle's unused monthly credits (Starter's 500 and the Growth top-up)
    # expired once; Free's first 50 are not subscription credits; then Starter's 500
    assert _expired(engine, org_id) == [balance_after_upgrade - 50 * C]
    assert balance == 50 * C + 500 * C
    assert (invoices[-1].amount_cents, invoices[-1].credits) == (1900, 500)


def test_cancel_returns_to_free_at_period_end_and_resubscribing_undoes_it(engine, starter_org):
    org_id, owner_id = starter_org
    clock.freeze(T0 + timedelta(days=3))
    preview = _preview(engine, org_id, owner_id, "free")
    assert preview.kind == "cancel"
    assert "Free from March 31, 2026" in preview.lines[1]
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="free")
    org, sub, balance, _ = _state(engine, org_id)
    assert org.plan_key == "starter" and sub.cancel_at_period_end

    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="starter")  # undo
    assert not _state(engine, org_id)[1].cancel_at_period_end
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="free")

    clock.freeze(T0 + timedelta(days=30, minutes=1))
    assert billing.subscriptions_renew_due().items == 1
    org, sub, after, invoices = _state(engine, org_id)
    assert org.plan_key == "free" and sub.status == "active"
    assert sub.stripe_subscription_id is None and not sub.cancel_at_period_end
    assert len(invoices) == 1  # nothing charged at the end
    assert after == balance - 500 * C == 50 * C  # Starter's unused monthly credits expired
    assert _expired(engine, org_id) == [500 * C]
    # a later subscription is a new checkout, not a change
    assert _preview(engine, org_id, owner_id, "starter").kind == "new"


def test_growth_starter_growth_within_a_minute_charges_and_grants_nothing_twice(
    engine, starter_org
):
    """The issue's trial: three quick changes gave three invoices and three grants."""
    org_id, owner_id = starter_org
    clock.freeze(T0 + timedelta(days=1))
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="growth")
    after_upgrade = _state(engine, org_id)
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="starter")
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="growth")
    org, sub, balance, invoices = _state(engine, org_id)
    assert org.plan_key == "growth" and sub.scheduled_plan_key is None
    assert balance == after_upgrade[2] and len(invoices) == len(after_upgrade[3]) == 2
    assert as_utc(sub.current_period_start) == T0


def test_spent_monthly_credits_and_purchases_do_not_expire(engine, starter_org):
    """Runs draw on monthly credits first: only what is left of them expires, never a top-up."""
    org_id, owner_id = starter_org
    with Session(engine) as session:
        credits.credits_grant(
            session=session,
            org_id=org_id,
            amount_millicredits=30 * C,
            idempotency_key="checkout:cs_bought:top_up",
            kind="purchase",
        )
        hold = credits.credits_hold(
            session=session, org_id=org_id, amount_millicredits=200 * C, idempotency_key="h1"
        )
        credits.credits_settle(
            session=session,
            hold_entry_id=hold.id,
            actual_millicredits=120 * C,
            idempotency_key="s1",
        )
        session.commit()
    before = _state(engine, org_id)[2]
    assert before == (50 + 500 + 30 - 120) * C
    clock.freeze(T0 + timedelta(days=30, seconds=1))
    assert billing.subscriptions_renew_due().items == 1
    assert billing.subscriptions_renew_due().items == 0
    assert _expired(engine, org_id) == [(500 - 120) * C]
    assert _state(engine, org_id)[2] == (50 + 30) * C + 500 * C


def test_local_provider_is_the_default_here():
    assert isinstance(payment_provider(), LocalPaymentProvider)


def _renewal_invoice(org_id, sub, customer, event_type, event_id, created):
    start = int((T0 + timedelta(days=30)).timestamp())
    invoice = {
        "id": "in_renewal_1",
        "object": "invoice",
        "customer": customer,
        "subscription": sub,
        "billing_reason": "subscription_cycle",
        "status": "paid" if event_type == "invoice.paid" else "open",
        "amount_paid": 1900 if event_type == "invoice.paid" else 0,
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
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(created.timestamp()),
        "data": {"object": invoice},
    }


def _can_run(engine, org_id, owner_id):
    from models import User
    from services import policy

    with Session(engine) as session:
        actor = policy.actor_for(session=session, user=session.get(User, owner_id), org_id=org_id)
        target = policy.target_for(session=session, org_id=org_id)
        return (
            policy.can(actor, policy.Action.tool_run, target),
            policy.can(actor, policy.Action.billing_view, target).allowed,
        )


def test_a_failed_payment_locks_runs_and_a_later_payment_unlocks_them(engine, starter_org):
    org_id, owner_id = starter_org
    org, sub, balance, _ = _state(engine, org_id)
    provider = payment_provider()
    renewal = T0 + timedelta(days=30)
    failed = _renewal_invoice(
        org_id,
        sub.stripe_subscription_id,
        org.stripe_customer_id,
        "invoice.payment_failed",
        "evt_fail",
        renewal,
    )
    assert billing.subscriptions._deliver(provider, [failed]) == ["past_due"]
    decision, can_read = _can_run(engine, org_id, owner_id)
    assert not decision.allowed and can_read
    assert decision.code == "subscription_inactive"
    assert (
        "last payment failed" in decision.message
        and "payment method in Billing" in decision.message
    )
    with Session(engine) as session:
        overview = billing.billing_overview(session=session, org_id=org_id)
    assert not overview.executable and overview.locked_reason.startswith("The last payment failed")

    paid = _renewal_invoice(
        org_id,
        sub.stripe_subscription_id,
        org.stripe_customer_id,
        "invoice.paid",
        "evt_paid",
        renewal + timedelta(days=2),
    )
    assert billing.subscriptions._deliver(provider, [paid]) == ["monthly_credits_granted"]
    assert _can_run(engine, org_id, owner_id)[0].allowed
    # the failure again (replayed) or a stale copy under a new id changes nothing
    stale = failed | {"id": "evt_fail_copy"}
    assert billing.subscriptions._deliver(provider, [failed, stale]) == [
        "duplicate",
        "ignored:stale",
    ]
    assert _can_run(engine, org_id, owner_id)[0].allowed
    org, sub, after, invoices = _state(engine, org_id)
    assert sub.status == "active" and after == balance - 500 * C + 500 * C  # expired, renewed
    assert invoices[-1].status == "paid"  # a late failure never un-pays an invoice


# --- Stripe at the adapter boundary (a loopback server records what the SDK sends) ------------


class _StripeRecorder(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict]] = []

    def do_GET(self):  # noqa: N802 - http.server API
        type(self).requests.append(("GET", self.path, {}))
        if self.path.startswith("/v1/subscriptions/sub_adapter_1"):
            self._send(
                200,
                {
                    "id": "sub_adapter_1",
                    "object": "subscription",
                    "schedule": None,
                    "items": {
                        "object": "list",
                        "data": [
                            {
                                "id": "si_adapter_1",
                                "object": "subscription_item",
                                "price": {
                                    "id": "price_starter",
                                    "object": "price",
                                    "product": "prod_cs",
                                },
                            }
                        ],
                    },
                },
            )
        else:
            self._send(404, {"error": {"message": "unknown"}})

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        type(self).requests.append(("POST", self.path, form))
        if self.path == "/v1/prices":
            self._send(200, {"id": "price_new", "object": "price"})
        elif self.path == "/v1/subscription_schedules":
            self._send(200, {"id": "sub_sched_1", "object": "subscription_schedule"})
        else:
            self._send(200, {"id": self.path.rsplit("/", 1)[-1], "object": "subscription"})

    def _send(self, status, data):
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def stripe_org(engine, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StripeRecorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _StripeRecorder.requests = []
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_adapter")
    monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_adapter")
    reset_settings_cache()
    clock.freeze(T0 + timedelta(days=15))
    with Session(engine, expire_on_commit=False) as session:
        owner = make_user(session, "owner@stripe-subs.test", "owner")
        org = orgs.org_create(session=session, owner=owner, name="Striped", slug="striped")
        org.plan_key = "starter"
        org.stripe_customer_id = "cus_adapter_1"
        sub = session.exec(select(Subscription).where(Subscription.org_id == org.id)).one()
        sub.plan_key, sub.stripe_subscription_id = "starter", "sub_adapter_1"
        sub.current_period_start, sub.current_period_end = T0, T0 + timedelta(days=30)
        session.add_all([org, sub])
        session.commit()
    yield org.id, owner.id
    server.shutdown()


def test_stripe_upgrade_updates_the_subscription_with_proration(engine, stripe_org):
    org_id, owner_id = stripe_org
    message = billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="growth")
    assert "Stripe confirms it" in message
    posts = [(path, form) for method, path, form in _StripeRecorder.requests if method == "POST"]
    assert [path for path, _ in posts] == ["/v1/prices", "/v1/subscriptions/sub_adapter_1"]
    update = posts[-1][1]
    assert update["items[0][id]"] == "si_adapter_1"
    assert update["items[0][price]"] == "price_new"
    assert update["proration_behavior"] == "always_invoice"
    assert update["metadata[plan_key]"] == "growth"
    assert posts[0][1]["unit_amount"] == "9900" and posts[0][1]["product"] == "prod_cs"
    # the plan changes when Stripe's webhooks arrive, not before
    assert _state(engine, org_id)[0].plan_key == "starter"


def test_stripe_downgrade_is_a_schedule_and_cancel_is_at_period_end(engine, stripe_org):
    org_id, owner_id = stripe_org
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="free")
    cancel = [f for m, p, f in _StripeRecorder.requests if p == "/v1/subscriptions/sub_adapter_1"]
    assert cancel[-1]["cancel_at_period_end"] == "true"
    assert cancel[-1]["metadata[scheduled_plan_key]"] == "free"

    _StripeRecorder.requests = []
    with Session(engine) as session:  # Stripe's webhook has not said the cancel yet
        sub = session.exec(select(Subscription).where(Subscription.org_id == org_id)).one()
        assert not sub.cancel_at_period_end
    with Session(engine, expire_on_commit=False) as session:
        org = session.get(Organization, org_id)
        org.plan_key = "growth"
        sub = session.exec(select(Subscription).where(Subscription.org_id == org_id)).one()
        sub.plan_key = "growth"
        session.add_all([org, sub])
        session.commit()
    billing.plan_change(actor_user_id=owner_id, org_id=org_id, plan_key="starter")
    paths = [p for m, p, f in _StripeRecorder.requests if m == "POST"]
    assert paths == [
        "/v1/subscription_schedules",
        "/v1/prices",
        "/v1/subscription_schedules/sub_sched_1",
        "/v1/subscriptions/sub_adapter_1",
    ]
    phases = next(f for m, p, f in _StripeRecorder.requests if p.endswith("sub_sched_1"))
    assert phases["phases[0][items][0][price]"] == "price_starter"
    assert phases["phases[0][end_date]"] == str(int((T0 + timedelta(days=30)).timestamp()))
    assert phases["phases[1][items][0][price]"] == "price_new"
    assert phases["end_behavior"] == "release"
    marked = [f for m, p, f in _StripeRecorder.requests if p == "/v1/subscriptions/sub_adapter_1"]
    assert marked[-1]["metadata[scheduled_plan_key]"] == "starter"


def _subscription_event(event_id, event_type, sub, customer, created, **fields):
    obj = {
        "id": sub,
        "object": "subscription",
        "customer": customer,
        "status": "active",
        "metadata": {"plan_key": "starter"},
        "current_period_start": int(T0.timestamp()),
        "current_period_end": int((T0 + timedelta(days=30)).timestamp()),
    } | fields
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(created.timestamp()),
        "data": {"object": obj},
    }


def test_cancel_events_replayed_or_out_of_order_change_nothing(engine, starter_org):
    """Stripe's order is not guaranteed: a cancel, the end of the subscription, then a late
    copy of an older update must leave the org on Free, and replays do nothing."""
    org_id, _owner_id = starter_org
    org, sub, balance, _ = _state(engine, org_id)
    provider = payment_provider()
    ids = (sub.stripe_subscription_id, org.stripe_customer_id)
    canceled = _subscription_event(
        "evt_c1",
        "customer.subscription.updated",
        *ids,
        T0 + timedelta(days=2),
        cancel_at_period_end=True,
        metadata={"plan_key": "starter", "scheduled_plan_key": "free"},
    )
    older = _subscription_event(
        "evt_c0", "customer.subscription.updated", *ids, T0 + timedelta(days=1)
    )
    ended = _subscription_event(
        "evt_c2",
        "customer.subscription.deleted",
        *ids,
        T0 + timedelta(days=30),
        status="canceled",
        cancel_at_period_end=True,
    )
    assert billing.subscriptions._deliver(provider, [canceled, ended, older, canceled, ended]) == [
        "subscription_updated",
        "back_to_free",
        "ignored:stale",
        "duplicate",
        "duplicate",
    ]
    org, sub, after, _ = _state(engine, org_id)
    assert (org.plan_key, sub.status, sub.stripe_subscription_id) == ("free", "active", None)
    assert after == balance - 500 * C  # the last cycle's unused monthly credits, once
    assert _expired(engine, org_id) == [500 * C]
    assert _can_run(engine, org_id, _owner_id)[0].allowed  # Free runs


def test_an_older_checkout_link_cannot_start_a_second_subscription(engine):
    clock.freeze(T0)
    with Session(engine, expire_on_commit=False) as session:
        owner = make_user(session, "two@subs.test", "owner")
        org = orgs.org_create(session=session, owner=owner, name="Two", slug="two-links")
        session.commit()
        links = [
            billing.checkout_start(
                session=session,
                actor=owner,
                org_id=org.id,
                purpose="upgrade",
                plan_key=plan_key,
                billing_url="http://app.test/b",
            ).url.split("session=", 1)[1]
            for plan_key in ("growth", "starter")
        ]
        session.commit()
    billing.local_checkout_confirm(actor_user_id=owner.id, org_id=org.id, token=links[0])
    before = _state(engine, org.id)
    with pytest.raises(ValidationFailed, match="already has a subscription, so this checkout"):
        billing.local_checkout_confirm(actor_user_id=owner.id, org_id=org.id, token=links[1])
    # confirming the first link again is harmless
    billing.local_checkout_confirm(actor_user_id=owner.id, org_id=org.id, token=links[0])
    org_after, sub, balance, invoices = _state(engine, org.id)
    assert org_after.plan_key == "growth" and balance == before[2]
    assert [i.amount_cents for i in invoices] == [9900]


def test_a_stripe_proration_invoice_in_the_newer_shape_tops_up_once(engine, starter_org):
    """Newer Stripe API versions put `proration` under the line's parent and the price under
    `pricing`; the upgrade's invoice still tops the cycle up pro rata, once."""
    from models import Plan

    org_id, _owner_id = starter_org
    with Session(engine) as session:
        for key in ("starter", "growth"):
            plan = session.exec(select(Plan).where(Plan.key == key)).one()
            plan.stripe_price_id = f"price_{key}_live"
            session.add(plan)
        session.commit()
    org, sub, balance, _ = _state(engine, org_id)
    halfway = T0 + timedelta(days=15)
    end = T0 + timedelta(days=30)

    def line(amount, plan_key):
        return {
            "amount": amount,
            "period": {"start": int(halfway.timestamp()), "end": int(end.timestamp())},
            "parent": {
                "type": "subscription_item_details",
                "subscription_item_details": {"proration": True, "subscription": "x"},
            },
            "pricing": {"price_details": {"price": f"price_{plan_key}_live"}},
        }

    invoice = {
        "id": "in_stripe_upgrade",
        "object": "invoice",
        "customer": org.stripe_customer_id,
        "billing_reason": "subscription_update",
        "amount_paid": 4000,
        "currency": "usd",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub.stripe_subscription_id},
        },
        "lines": {"data": [line(-950, "starter"), line(4950, "growth")]},
    }
    events = [
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(halfway.timestamp()),
            "data": {"object": invoice},
        }
        for event_id, event_type in (
            ("evt_up_paid", "invoice.paid"),
            ("evt_up_ok", "invoice.payment_succeeded"),
        )
    ]
    effects = billing.subscriptions._deliver(payment_provider(), events)
    assert effects == ["plan_upgraded_prorated", "plan_upgraded_prorated"]
    org, sub, after, invoices = _state(engine, org_id)
    assert after == balance + 1250 * C and org.plan_key == "growth"
    assert (invoices[-1].amount_cents, invoices[-1].credits) == (4000, 1250)
