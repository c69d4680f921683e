"""Platform status from product signals, support tickets from a failed run, and the
low-balance alert (mail through a real SMTP server on loopback)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select

from core.clock import utcnow
from core.settings import reset_settings_cache
from models import Generation, Incident, Organization, SupportTicketMessage
from services import status as status_service
from services import support as support_service
from services.credits import balance_get, credits_grant, credits_hold
from services.errors import PermissionDenied, ValidationFailed
from services.models_registry import model_enable, model_swap
from services.notifications import low_balance_check, preference_set
from tests.factories import free_port, make_org, make_user
from tests.unit.test_mail_smtp import CollectingHandler


@pytest.fixture
def smtp(monkeypatch):
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    reset_settings_cache()
    yield handler
    controller.stop()


def _swappable(session) -> str:
    from models import AIModel

    model = session.exec(select(AIModel).where(AIModel.backup_model_key.is_not(None))).first()
    return model.key


def test_a_swapped_model_degrades_the_studio_with_one_automatic_incident(session):
    operator = make_user(session, "op@studio.test", operator=True)
    assert status_service.platform_status(session=session).headline == (
        "Platform status: Operational"
    )
    key = _swappable(session)
    model_swap(session=session, actor=operator, model_key=key, reason="Provider slow")
    session.commit()
    status = status_service.platform_status(session=session)
    studio = next(c for c in status.components if c.key == "studio")
    assert studio.level == "degraded" and "backup" in studio.reasons[0]
    assert status_service.status_incidents_sync(session=session) == 1
    assert status_service.status_incidents_sync(session=session) == 0  # once
    incident = session.exec(select(Incident)).one()
    assert incident.resolved_at is None and "studio" in incident.components
    model_enable(session=session, actor=operator, model_key=key)
    status_service.status_incidents_sync(session=session)
    assert session.get(Incident, incident.id).status == "resolved"


def test_provider_errors_over_the_window_degrade_the_studio(session):
    org = make_org(session, slug="acme")
    now = utcnow()
    for index in range(6):
        failed = index < 3
        session.add(
            Generation(
                public_id=f"gen_pe{index}",
                org_id=org.id,
                model_key="local-text",
                modality="text",
                status="failed" if failed else "succeeded",
                failure_code="provider_error" if failed else None,
                finished_at=now - timedelta(minutes=1),
            )
        )
    session.commit()
    studio = status_service.platform_status(session=session).components[0]
    assert studio.level == "degraded" and "3 of the last 6" in studio.reasons[0]


def test_operator_incidents_and_customers_cannot_open_them(session):
    operator = make_user(session, "op@studio.test", operator=True)
    customer = make_user(session, "c@acme.test")
    with pytest.raises(PermissionDenied):
        status_service.incident_open(
            session=session, actor=customer, title="x", components=["api"], impact="outage", body=""
        )
    incident = status_service.incident_open(
        session=session,
        actor=operator,
        title="API errors",
        components=["api"],
        impact="outage",
        body="Looking",
    )
    assert status_service.platform_status(session=session).components[3].level == "outage"
    status_service.incident_update(
        session=session, actor=operator, incident_id=incident.id, status="resolved", body="Fixed"
    )
    assert status_service.platform_status(session=session).level == "operational"
    assert len(status_service.incidents_history(session=session)) == 1


def _failed_run(session, org) -> Generation:
    generation = Generation(
        public_id="gen_failed1",
        org_id=org.id,
        model_key="local-image",
        tool_key="social-image",
        modality="image",
        status="failed",
        failure_code="provider_error",
        request_id="req_abc",
        status_history=[{"status": "queued", "at": "2026-11-26T10:00:00"}],
        finished_at=utcnow(),
    )
    session.add(generation)
    session.flush()
    return generation


def test_a_ticket_from_a_failed_run_carries_its_generation_error_and_time(session):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner, plan_key="growth")
    generation = _failed_run(session, org)
    fields = support_service.TicketFields(
        subject="Image run failed", generation_id=generation.public_id
    )
    ticket = support_service.ticket_create(
        session=session, actor=owner, org_id=org.id, fields=fields, idempotency_key="form-1"
    )
    assert ticket.generation_public_id == "gen_failed1"
    assert ticket.error_code == "provider_error" and ticket.model_key == "local-image"
    assert ticket.occurred_at is not None and ticket.request_id == "req_abc"
    assert ticket.status == "new"
    assert ticket.due_at - ticket.created_at == timedelta(hours=24)  # Growth
    again = support_service.ticket_create(
        session=session, actor=owner, org_id=org.id, fields=fields, idempotency_key="form-1"
    )
    assert again.id == ticket.id  # a double submit files one ticket


def test_a_ticket_cannot_name_another_organizations_run(session):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner)
    other = make_org(session, slug="other")
    _failed_run(session, other)
    with pytest.raises(ValidationFailed, match="No run gen_failed1"):
        support_service.ticket_create(
            session=session,
            actor=owner,
            org_id=org.id,
            fields=support_service.TicketFields(subject="Hello", generation_id="gen_failed1"),
            idempotency_key="x",
        )


def test_operator_reply_is_mailed_and_notes_stay_internal(session, smtp):
    owner = make_user(session, "owner@acme.test")
    operator = make_user(session, "op@studio.test", operator=True)
    org = make_org(session, owner)
    ticket = support_service.ticket_create(
        session=session,
        actor=owner,
        org_id=org.id,
        fields=support_service.TicketFields(subject="Where are my credits?"),
        idempotency_key="k",
    )
    support_service.ticket_note(session=session, actor=operator, ticket_id=ticket.id, body="VIP")
    support_service.ticket_operator_reply(
        session=session, actor=operator, ticket_id=ticket.id, body="They are back now."
    )
    assert ticket.status == "waiting"
    visible = support_service.ticket_messages(
        session=session, ticket_id=ticket.id, include_notes=False
    )
    assert [m.kind for m in visible] == ["customer", "support"]
    subjects = [m["Subject"] for m in smtp.messages]
    assert any("Reply: Where are my credits?" in s for s in subjects)
    assert all("VIP" not in m.get_content() for m in smtp.messages)
    with pytest.raises(PermissionDenied):
        support_service.support_queue(session=session, actor=owner)
    assert [t.id for t in support_service.support_queue(session=session, actor=operator)] == [
        ticket.id
    ]
    assert session.exec(select(SupportTicketMessage)).all()


def test_low_balance_mail_once_per_crossing_and_re_armed_by_a_top_up(session, smtp):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner)
    org = session.get(Organization, org.id)
    start = balance_get(session=session, org_id=org.id).balance  # the Free plan's grant
    credits_grant(session=session, org_id=org.id, amount_millicredits=20_000, idempotency_key="s")
    org.low_balance_alert_credits = start // 1000 + 10
    session.add(org)
    session.commit()
    assert low_balance_check(session=session, org_id=org.id) is False  # 20 >= 10
    credits_hold(session=session, org_id=org.id, amount_millicredits=15_000, idempotency_key="h1")
    assert low_balance_check(session=session, org_id=org.id) is True
    assert low_balance_check(session=session, org_id=org.id) is False  # still below: no repeat
    session.commit()
    assert len(smtp.messages) == 1 and "credits below" in smtp.messages[0]["Subject"]
    assert smtp.messages[0]["To"] == "owner@acme.test"
    credits_grant(session=session, org_id=org.id, amount_millicredits=20_000, idempotency_key="t")
    assert low_balance_check(session=session, org_id=org.id) is False  # re-armed
    credits_hold(session=session, org_id=org.id, amount_millicredits=20_000, idempotency_key="h2")
    assert low_balance_check(session=session, org_id=org.id) is True
    session.commit()
    assert len(smtp.messages) == 2


def test_an_owner_who_turned_it_off_gets_no_low_balance_mail(session, smtp):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner)
    org = session.get(Organization, org.id)
    org.low_balance_alert_credits = balance_get(session=session, org_id=org.id).balance // 1000 + 1
    preference_set(session=session, user_id=owner.id, kind="low_balance", enabled=False)
    session.commit()
    assert low_balance_check(session=session, org_id=org.id) is True
    assert smtp.messages == []
    with pytest.raises(ValidationFailed):
        preference_set(session=session, user_id=owner.id, kind="security", enabled=False)
