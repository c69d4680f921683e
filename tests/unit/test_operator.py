"""Operator console rules: search, refund once, four-eyes adjustments, view-as is read-only."""

from __future__ import annotations

import pytest
from sqlmodel import select

from models import AuditLogEntry, CreditLedgerEntry, Generation
from services import credits, policy
from services import operator as operator_service
from services.error_codes import Code
from services.errors import Conflict, DomainError, PermissionDenied, ValidationFailed
from tests.factories import add_member, make_org, make_user


@pytest.fixture
def world(session):
    owner = make_user(session, "owner@acme.test", "Olivia Owner")
    org = make_org(session, owner, "Acme Marketing", credits=10_000)
    org.stripe_customer_id = "cus_ACME123"
    session.add(org)
    add_member(session, org, "eddie@acme.test", "editor")
    ann = make_user(session, "ann@ops.test", "Ann Operator", operator=True)
    bob = make_user(session, "bob@ops.test", "Bob Operator", operator=True)
    failed = Generation(
        public_id="gen_failed1",
        org_id=org.id,
        user_id=owner.id,
        model_key="local-text",
        modality="text",
        prompt="hi",
        status="failed",
        estimate_millicredits=2_000,
        failure_code="provider_error",
        failure_reason="provider down",
    )
    session.add(failed)
    session.commit()
    return {"owner": owner, "org": org, "ann": ann, "bob": bob, "failed": failed}


def test_operators_find_a_customer_by_slug_member_email_or_stripe_id(session, world):
    ann = world["ann"]
    for query in ("acme-marketing", "EDDIE@acme", "cus_ACME123"):
        hits = operator_service.customers_search(session=session, actor=ann, query=query)
        assert [hit.slug for hit in hits] == [world["org"].slug], query
    assert operator_service.customers_search(session=session, actor=ann, query="nobody") == []


def test_a_customer_cannot_search(session, world):
    with pytest.raises(PermissionDenied) as refused:
        operator_service.customers_search(session=session, actor=world["owner"], query="acme")
    assert refused.value.code == Code.operator_only


def test_a_run_is_refunded_once_and_the_customer_sees_it(session, world):
    org, ann, bob = world["org"], world["ann"], world["bob"]
    before = credits.balance_get(session=session, org_id=org.id).balance
    entry = operator_service.run_refund(
        session=session, actor=ann, org_id=org.id, public_id="gen_failed1", reason="provider outage"
    )
    session.commit()
    assert entry.kind == "refund" and entry.amount_millicredits == 2_000
    assert "Ann Operator" in entry.memo and "provider outage" in entry.memo
    with pytest.raises(Conflict) as again:
        operator_service.run_refund(
            session=session, actor=bob, org_id=org.id, public_id="gen_failed1", reason="double"
        )
    assert again.value.code == Code.already_refunded
    assert "Ann Operator" in again.value.message
    session.rollback()
    assert credits.balance_get(session=session, org_id=org.id).balance == before + 2_000
    refunds = session.exec(
        select(CreditLedgerEntry).where(CreditLedgerEntry.kind == "refund")
    ).all()
    assert len(refunds) == 1
    audit = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "credits.refunded")
    ).one()
    assert audit.org_id == org.id and audit.details["operator"].startswith("Ann Operator")


def test_a_refund_needs_a_reason(session, world):
    with pytest.raises(ValidationFailed) as refused:
        operator_service.run_refund(
            session=session,
            actor=world["ann"],
            org_id=world["org"].id,
            public_id="gen_failed1",
            reason="  ",
        )
    assert refused.value.code == Code.reason_required


def test_small_adjustment_applies_at_once(session, world):
    outcome = operator_service.adjustment_submit(
        session=session,
        actor=world["ann"],
        org_id=world["org"].id,
        amount_millicredits=5_000,
        reason="goodwill",
        request_key="k1",
    )
    session.commit()
    assert outcome.applied and outcome.entry.amount_millicredits == 5_000
    # The same form submitted twice is one request.
    again = operator_service.adjustment_submit(
        session=session,
        actor=world["ann"],
        org_id=world["org"].id,
        amount_millicredits=5_000,
        reason="goodwill",
        request_key="k1",
    )
    assert again.entry.id == outcome.entry.id
    assert (
        len(
            session.exec(
                select(CreditLedgerEntry).where(CreditLedgerEntry.kind == "adjustment")
            ).all()
        )
        == 1
    )


def test_large_adjustment_needs_another_operator(session, world):
    org, ann, bob = world["org"], world["ann"], world["bob"]
    outcome = operator_service.adjustment_submit(
        session=session,
        actor=ann,
        org_id=org.id,
        amount_millicredits=500_000,
        reason="contract credit",
        request_key="k2",
    )
    session.commit()
    assert not outcome.applied and outcome.approval.status == "pending"
    balance = credits.balance_get(session=session, org_id=org.id).balance
    with pytest.raises(PermissionDenied) as refused:
        operator_service.adjustment_approve(
            session=session, actor=ann, approval_id=outcome.approval.id
        )
    assert refused.value.code == Code.self_approval
    session.rollback()
    assert credits.balance_get(session=session, org_id=org.id).balance == balance
    entry = operator_service.adjustment_approve(
        session=session, actor=bob, approval_id=outcome.approval.id
    )
    session.commit()
    assert entry.amount_millicredits == 500_000
    with pytest.raises(Conflict) as twice:
        operator_service.adjustment_approve(
            session=session, actor=bob, approval_id=outcome.approval.id
        )
    assert twice.value.code == Code.approval_decided
    session.rollback()
    assert credits.balance_get(session=session, org_id=org.id).balance == balance + 500_000


def test_view_as_is_read_only_for_every_mutating_action(session, world):
    org, ann = world["org"], world["ann"]
    grant = operator_service.view_as_start(
        session=session, actor=ann, org_id=org.id, reason="customer reports a blank page"
    )
    session.commit()
    actor = policy.actor_for(session=session, user=ann, org_id=org.id)
    assert actor.viewing_as
    target = policy.target_for(session=session, org_id=org.id)
    assert policy.MUTATING_ACTIONS, "the policy names its mutating actions"
    for action in policy.Action:
        decision = policy.can(actor, action, target)
        if action in policy.MUTATING_ACTIONS:
            assert not decision and decision.code == Code.view_as_read_only, action
        else:
            assert decision, action
    # The console's own actions are refused by the policy too while viewing as.
    with pytest.raises(DomainError) as refused:
        operator_service.run_refund(
            session=session, actor=ann, org_id=org.id, public_id="gen_failed1", reason="try"
        )
    assert refused.value.code == Code.view_as_read_only
    session.rollback()
    assert operator_service.view_as_stop(session=session, actor=ann, org_id=org.id)
    session.commit()
    assert not policy.actor_for(session=session, user=ann, org_id=org.id).viewing_as
    actions = [
        e.action for e in session.exec(select(AuditLogEntry).where(AuditLogEntry.org_id == org.id))
    ]
    assert "operator.view_as_started" in actions and "operator.view_as_stopped" in actions
    assert grant.expires_at is not None


def test_view_as_expires_after_thirty_minutes(session, world):
    from datetime import timedelta

    from core import clock

    org, ann = world["org"], world["ann"]
    now = clock.utcnow()
    clock.freeze(now)
    operator_service.view_as_start(session=session, actor=ann, org_id=org.id, reason="look")
    session.commit()
    clock.freeze(now + timedelta(minutes=31))
    assert not policy.actor_for(session=session, user=ann, org_id=org.id).viewing_as


def test_model_controls_need_a_reason_and_say_who_is_affected(session, world):
    ann = world["ann"]
    controls = operator_service.models_controls(session=session, actor=ann)
    model = next(c for c in controls if c.status == "active")
    with pytest.raises(ValidationFailed):
        operator_service.model_control(
            session=session, actor=ann, model_key=model.key, change="disable", reason=""
        )
    message = operator_service.model_control(
        session=session, actor=ann, model_key=model.key, change="disable", reason="vendor outage"
    )
    assert "is disabled" in message and "organization" in message
    with pytest.raises(PermissionDenied):
        operator_service.models_controls(session=session, actor=world["owner"])


def _failed_run(session, org, user, public_id):
    run = Generation(
        public_id=public_id,
        org_id=org.id,
        user_id=user.id,
        model_key="local-text",
        modality="text",
        prompt="tagline",
        status="failed",
        estimate_millicredits=1_000,
        failure_code="provider_error",
    )
    session.add(run)
    return run


def test_runs_are_recovered_one_by_one_before_any_bulk_rerun(session, world, monkeypatch):
    from core.clock import utcnow
    from services import run_engine

    executor = run_engine.inline_executor()
    monkeypatch.setattr(executor, "paused", True)
    monkeypatch.setattr(executor, "submitted", [])
    org, ann, owner = world["org"], world["ann"], world["owner"]
    org.billing_profile_added_at = utcnow()  # the Free plan runs models once billing is set up
    session.add(org)
    for index in range(3):
        _failed_run(session, org, owner, f"gen_more{index}")
    session.commit()

    with pytest.raises(Conflict) as first:
        operator_service.runs_bulk_retry(
            session=session, actor=ann, org_id=org.id, reason="outage over"
        )
    assert first.value.code == Code.bulk_needs_single_retry
    session.rollback()

    message = operator_service.run_recover(
        session=session, actor=ann, public_id="gen_failed1", action="retry", reason="outage over"
    )
    session.commit()
    assert message.startswith("gen_failed1 was retried as ")
    retry_id = message.rsplit(" ", 1)[1].rstrip(".")
    retry = session.exec(select(Generation).where(Generation.public_id == retry_id)).one()
    assert retry.status == "queued" and retry.user_id == owner.id
    assert executor.submitted == [retry.id]
    # Still queued: a bulk rerun waits until the single retry succeeded.
    with pytest.raises(Conflict):
        operator_service.runs_bulk_retry(
            session=session, actor=ann, org_id=org.id, reason="outage over"
        )
    session.rollback()
    retry.status = "succeeded"
    session.add(retry)
    session.commit()

    started = operator_service.runs_bulk_retry(
        session=session, actor=ann, org_id=org.id, reason="outage over"
    )
    session.commit()
    assert len(started) == 3  # gen_more0..2; gen_failed1 was already retried
    again = operator_service.runs_bulk_retry(
        session=session, actor=ann, org_id=org.id, reason="outage over"
    )
    session.commit()
    assert again == []  # each failed run is retried once
    actions = [
        e.action for e in session.exec(select(AuditLogEntry).where(AuditLogEntry.org_id == org.id))
    ]
    assert actions.count("generation.retried_by_operator") == 1
    assert actions.count("generation.bulk_retried") == 2


def test_stop_and_requeue_need_the_right_status(session, world):
    org, ann, owner = world["org"], world["ann"], world["owner"]
    with pytest.raises(Conflict) as refused:
        operator_service.run_recover(
            session=session, actor=ann, public_id="gen_failed1", action="requeue", reason="again"
        )
    assert refused.value.code == Code.run_not_queued
    session.rollback()
    message = operator_service.run_recover(
        session=session, actor=ann, public_id="gen_failed1", action="stop", reason="stuck"
    )
    assert "failed" in message
    with pytest.raises(PermissionDenied):
        operator_service.run_recover(
            session=session, actor=owner, public_id="gen_failed1", action="stop", reason="me"
        )
    assert org.id


def test_a_run_can_be_refunded_in_part_once(session, world):
    org, ann, bob = world["org"], world["ann"], world["bob"]
    before = credits.balance_get(session=session, org_id=org.id).balance

    def refund(actor, amount, reason="half the result was unusable"):
        return operator_service.run_refund(
            session=session,
            actor=actor,
            org_id=org.id,
            public_id="gen_failed1",
            reason=reason,
            amount_millicredits=amount,
        )

    for wrong in (0, -500, 2_001, "500", True):
        with pytest.raises(ValidationFailed) as refused:
            refund(ann, wrong)
        assert refused.value.code == Code.refund_amount_invalid
        assert "2" in refused.value.message  # names the most that can be refunded
        session.rollback()
    with pytest.raises(ValidationFailed) as no_reason:
        refund(ann, 500, reason="")
    assert no_reason.value.code == Code.reason_required
    session.rollback()

    entry = refund(ann, 500)
    session.commit()
    assert entry.amount_millicredits == 500 and entry.memo.startswith("Partial refund")
    with pytest.raises(Conflict) as again:  # the rest cannot be refunded a second time
        refund(bob, 1_500)
    assert again.value.code == Code.already_refunded
    session.rollback()
    assert credits.balance_get(session=session, org_id=org.id).balance == before + 500
    audit = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "credits.refunded")
    ).one()
    assert audit.details["millicredits"] == 500 and audit.details["partial"] is True
    assert audit.details["refundable_millicredits"] == 2_000


def _started_runs(session, org, owner, count):
    from core.clock import utcnow
    from services import generations

    org.billing_profile_added_at = utcnow()
    session.add(org)
    runs = [
        generations.generation_start(
            session=session,
            user=owner,
            org_id=org.id,
            model_key="local-text",
            prompt=f"tagline {index}",
        )
        for index in range(count)
    ]
    session.commit()
    return runs


def _bulk(session, actor, org, action, key="form-1"):
    return operator_service.runs_bulk_recover(
        session=session,
        actor=actor,
        org_id=org.id,
        action=action,
        reason="worker pool restarted",
        request_key=key,
    )


def test_bulk_requeue_comes_after_one_requeue_acts_once_and_is_audited_once(
    session, world, monkeypatch
):
    from services import run_engine

    executor = run_engine.inline_executor()
    monkeypatch.setattr(executor, "paused", True)
    monkeypatch.setattr(executor, "submitted", [])
    org, ann, owner = world["org"], world["ann"], world["owner"]
    runs = _started_runs(session, org, owner, 3)
    executor.submitted.clear()

    with pytest.raises(Conflict) as first:
        _bulk(session, ann, org, "requeue")
    assert first.value.code == Code.bulk_needs_single_action
    assert "Requeue one queued run" in first.value.message
    session.rollback()

    operator_service.run_recover(
        session=session, actor=ann, public_id=runs[0].public_id, action="requeue", reason="stuck"
    )
    session.commit()
    executor.submitted.clear()
    with pytest.raises(ValidationFailed):
        _bulk(session, ann, org, "restart")
    session.rollback()

    outcome = _bulk(session, ann, org, "requeue")
    session.commit()
    assert sorted(outcome.acted) == sorted(r.public_id for r in runs)
    assert not outcome.replayed and "Sent to the queue again: 3 run(s)" in outcome.message
    assert sorted(executor.submitted) == sorted(r.id for r in runs)

    twice = _bulk(session, ann, org, "requeue")  # the double click
    session.commit()
    assert twice.replayed and twice.acted == outcome.acted
    assert "nothing more happened" in twice.message
    assert len(executor.submitted) == 3
    entries = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "generation.bulk_requeued")
    ).all()
    assert len(entries) == 1
    assert entries[0].details["acted"] == outcome.acted and entries[0].details["skipped"] == []
    assert entries[0].details["operator"].startswith("Ann Operator")


def test_bulk_stop_fails_running_runs_returns_their_credits_and_names_what_it_skipped(
    session, world, monkeypatch
):
    from services import run_engine

    executor = run_engine.inline_executor()
    monkeypatch.setattr(executor, "paused", True)
    org, ann, owner = world["org"], world["ann"], world["owner"]
    before = credits.balance_get(session=session, org_id=org.id)
    runs = _started_runs(session, org, owner, 3)
    for run in runs:
        run.status = "running"
        session.add(run)
    session.commit()

    with pytest.raises(Conflict) as first:
        _bulk(session, ann, org, "stop")
    assert first.value.code == Code.bulk_needs_single_action
    assert "Stop one running run" in first.value.message
    session.rollback()
    operator_service.run_recover(
        session=session, actor=ann, public_id=runs[0].public_id, action="stop", reason="stuck"
    )
    session.commit()

    monkeypatch.setattr(operator_service, "BULK_RUN_LIMIT", 1)
    outcome = _bulk(session, ann, org, "stop", key="form-2")
    session.commit()
    assert outcome.acted == [runs[1].public_id]
    assert outcome.skipped == [(runs[2].public_id, "more than 1 at once; press again")]
    assert f"Skipped 1: {runs[2].public_id} (more than 1 at once" in outcome.message
    session.refresh(runs[2])
    assert runs[2].status == "running"
    rest = _bulk(session, ann, org, "stop", key="form-3")  # pressed again: a new form
    session.commit()
    assert rest.acted == [runs[2].public_id] and not rest.replayed
    for run in runs:
        session.refresh(run)
        assert run.status == "failed" and run.failure_code == "stopped_by_operator"
    after = credits.balance_get(session=session, org_id=org.id)
    assert after.available_general == before.available_general  # every hold was returned
    entries = session.exec(
        select(AuditLogEntry)
        .where(AuditLogEntry.action == "generation.bulk_stopped")
        .order_by(AuditLogEntry.id)
    ).all()
    assert [e.details["acted"] for e in entries] == [[runs[1].public_id], [runs[2].public_id]]
    assert entries[0].details["skipped"] == [
        [runs[2].public_id, "more than 1 at once; press again"]
    ]
    actions = [e.action for e in session.exec(select(AuditLogEntry))]
    assert actions.count("generation.force_failed") == 1  # the single stop, not one per run
    with pytest.raises(PermissionDenied):
        _bulk(session, owner, org, "stop", key="form-4")
