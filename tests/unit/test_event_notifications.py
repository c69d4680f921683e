"""Event mail through a real SMTP server (aiosmtpd): a failed or timed-out run mails the person
who ran it once, an accepted invitation mails the inviter, an expired connection mails who can
reconnect it, an incident mails the people of the organizations it reaches, and a run that takes
the balance below the alert mails the owners without waiting for the minute job. Each respects
the person's choice under Help > Notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import col, select

from core import clock
from core.clock import utcnow
from core.settings import reset_settings_cache
from models import Incident, OAuthConnection, Organization, OutboxMail
from models.enums import OrgRole
from services import connections, generations, invites
from services import status as status_service
from services.generation_sweep import generations_sweep_stuck
from services.notifications import preference_set
from services.providers.base import ProviderError, ProviderErrorCode
from tests.factories import add_member, free_port, make_org, make_user
from tests.unit.test_generations import FailingProvider, World
from tests.unit.test_mail_smtp import CollectingHandler


@pytest.fixture
def smtp(monkeypatch, tmp_path):
    monkeypatch.setenv("STORAGE_LOCAL_DIR", str(tmp_path / "assets"))
    monkeypatch.delenv("STORAGE_BUCKET", raising=False)
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    reset_settings_cache()
    yield handler
    controller.stop()


def _mails(smtp, *, to: str | None = None, subject_has: str = "") -> list:
    return [
        m
        for m in smtp.messages
        if (to is None or m["To"] == to) and subject_has in str(m["Subject"])
    ]


# --- run failed -----------------------------------------------------------------------------------


def test_a_failed_run_mails_the_person_who_ran_it_once(session, smtp):
    world = World(session)
    generation = world.start()
    failed = ProviderError(ProviderErrorCode.provider_error, "The provider answered 500.")
    done = generations.generation_run(
        session=session, generation_id=generation.id, provider=FailingProvider(failed)
    )
    assert done.status == "failed"
    # A second worker finishing the same run finds it failed already: nothing more is sent.
    generations.generation_run(
        session=session, generation_id=generation.id, provider=FailingProvider(failed)
    )
    session.commit()  # SQLite: one writer; the session holds none while the sweep runs
    generations_sweep_stuck(now=utcnow() + timedelta(hours=1))
    (mail,) = _mails(smtp, subject_has="failed")
    assert mail["To"] == world.editor.email
    assert generation.public_id in mail["Subject"] and "provider_error" in mail["Subject"]
    body = mail.get_content()
    assert "The provider answered 500." in body and "returned" in body
    assert f"generation_id={generation.public_id}" in body  # the pre-filled support form
    assert "Help > Notifications" in body
    assert _mails(smtp, to=world.owner.email, subject_has="failed") == []


def test_no_run_failed_mail_for_someone_who_turned_it_off(session, smtp):
    world = World(session)
    preference_set(session=session, user_id=world.editor.id, kind="run_failed", enabled=False)
    session.commit()
    generation = world.start()
    generations.generation_run(
        session=session,
        generation_id=generation.id,
        provider=FailingProvider(ProviderError(ProviderErrorCode.provider_error)),
    )
    assert _mails(smtp, subject_has="failed") == []


def test_a_run_timed_out_by_the_sweep_mails_once_even_with_two_sweeps(session, smtp):
    world = World(session)
    generation = world.start()  # queued, never picked up
    later = utcnow() + timedelta(minutes=20)
    first = generations_sweep_stuck(now=later)
    second = generations_sweep_stuck(now=later + timedelta(minutes=1))
    assert first.timed_out == 1 and second.timed_out == 0
    (mail,) = _mails(smtp, subject_has="failed")
    assert mail["To"] == world.editor.email and "timed_out" in mail["Subject"]
    # The run's own completion arriving afterwards finds it failed: still one mail.
    late = generations.generation_run(
        session=session,
        generation_id=generation.id,
        provider=FailingProvider(ProviderError(ProviderErrorCode.timeout)),
    )
    session.commit()
    assert late.status == "failed" and late.failure_code == "timed_out"
    assert len(_mails(smtp, subject_has="failed")) == 1


def test_a_successful_run_sends_no_run_mail(session, smtp):
    world = World(session)
    generation = world.start()
    done = generations.generation_run(session=session, generation_id=generation.id)
    assert done.status == "succeeded"
    assert smtp.messages == []


# --- low balance right after a run ------------------------------------------------------------


def test_a_run_that_takes_the_balance_below_the_alert_mails_owners_at_once(session, smtp):
    world = World(session, balance=10)
    org = session.get(Organization, world.org.id)
    org.low_balance_alert_credits = 10  # 10 now: a run of any cost crosses below it
    session.add(org)
    session.commit()
    generation = world.start()
    done = generations.generation_run(session=session, generation_id=generation.id)
    assert done.status == "succeeded" and done.charged_millicredits > 0
    (alert,) = _mails(smtp, subject_has="credits below")
    assert alert["To"] == world.owner.email
    # A second run below the threshold: no second alert until a top-up re-arms it.
    generations.generation_run(session=session, generation_id=world.start(prompt="Another").id)
    assert len(_mails(smtp, subject_has="credits below")) == 1


# --- invite accepted ------------------------------------------------------------------------------


def test_an_accepted_invitation_mails_the_inviter_once(session, smtp):
    owner = make_user(session, "owner@acme.test", name="Olive Owner")
    org = make_org(session, owner, plan_key="growth")
    invitee = make_user(session, "new@acme.test", name="Nina New")
    _, url = invites.invite_create(
        session=session,
        actor=owner,
        org_id=org.id,
        email="new@acme.test",
        role=OrgRole.editor,
        base_url="http://app.test",
    )
    session.commit()
    invites.invite_accept(session=session, token=url.split("token=", 1)[1], user=invitee)
    session.commit()
    invites.invite_accept(
        session=session, token=url.split("token=", 1)[1], user=invitee
    )  # again: already in
    session.commit()
    (mail,) = _mails(smtp, subject_has="accepted your invitation")
    assert mail["To"] == "owner@acme.test"
    assert "new@acme.test" in mail["Subject"]
    assert "Nina New (new@acme.test) accepted your invitation" in mail.get_content()
    assert "as editor" in mail.get_content()


def test_an_inviter_who_turned_it_off_gets_no_mail(session, smtp):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner, plan_key="growth")
    invitee = make_user(session, "new@acme.test")
    preference_set(session=session, user_id=owner.id, kind="invite_accepted", enabled=False)
    _, url = invites.invite_create(
        session=session,
        actor=owner,
        org_id=org.id,
        email="new@acme.test",
        role="viewer",
        base_url="http://app.test",
    )
    invites.invite_accept(session=session, token=url.split("token=", 1)[1], user=invitee)
    session.commit()
    assert _mails(smtp, subject_has="accepted your invitation") == []


# --- connection expired -----------------------------------------------------------------------


def test_an_expired_connection_mails_who_can_reconnect_it_once(session, smtp, engine):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner, plan_key="growth")
    editor = add_member(session, org, "editor@acme.test", OrgRole.editor.value)
    admin = add_member(session, org, "admin@acme.test", OrgRole.admin.value)
    preference_set(session=session, user_id=admin.id, kind="connection_expired", enabled=False)
    session.add(
        OAuthConnection(
            org_id=org.id,
            connected_by_user_id=editor.id,
            provider_key="meta",  # issues no refresh token: it expires when its access ends
            account_id="page-1",
            account_label="Acme Page",
            access_token_encrypted="x",
            expires_at=utcnow() - timedelta(minutes=5),
        )
    )
    session.commit()
    assert connections.connections_refresh_due(engine=engine).expired == 1
    assert connections.connections_refresh_due(engine=engine).expired == 0
    mails = _mails(smtp, subject_has="connection expired")
    assert sorted(m["To"] for m in mails) == ["editor@acme.test", "owner@acme.test"]
    body = mails[0].get_content()
    assert "Acme Page" in body and "Reconnect" in body and "/settings" in body


# --- incidents ----------------------------------------------------------------------------------


def test_incidents_mail_the_people_of_affected_organizations_who_want_it(session, smtp):
    operator = make_user(session, "op@studio.test", operator=True)
    owner = make_user(session, "owner@acme.test")
    acme = make_org(session, owner, plan_key="growth")
    add_member(session, acme, "viewer@acme.test", OrgRole.viewer.value)
    quiet = add_member(session, acme, "quiet@acme.test", OrgRole.editor.value)
    preference_set(session=session, user_id=quiet.id, kind="incidents", enabled=False)
    other_owner = make_user(session, "owner@other.test")
    make_org(session, other_owner, name="Other Co")
    session.commit()

    incident = status_service.incident_open(
        session=session,
        actor=operator,
        title="Image runs failing",
        components=["studio"],
        impact="outage",
        body="Image runs fail at the provider; we are looking.",
        org_ids=[acme.id],
    )
    session.commit()
    opened = _mails(smtp, subject_has="Image runs failing")
    assert sorted(m["To"] for m in opened) == ["owner@acme.test", "viewer@acme.test"]
    assert "investigating" in opened[0]["Subject"]
    assert "we are looking" in opened[0].get_content() and "/status" in opened[0].get_content()

    status_service.incident_update(
        session=session,
        actor=operator,
        incident_id=incident.id,
        status="resolved",
        body="Fixed at the provider.",
    )
    session.commit()
    resolved = _mails(smtp, subject_has="Incident resolved")
    assert sorted(m["To"] for m in resolved) == ["owner@acme.test", "viewer@acme.test"]
    assert _mails(smtp, to="owner@other.test") == [] and _mails(smtp, to="quiet@acme.test") == []


def test_an_automatic_incident_mails_when_opened_and_once_when_resolved(session, smtp):
    from services.models_registry import model_enable, model_swap

    operator = make_user(session, "op@studio.test", operator=True)
    owner = make_user(session, "owner@acme.test")
    make_org(session, owner, plan_key="growth")
    model_swap(session=session, actor=operator, model_key="local-image-hd")
    session.commit()
    assert status_service.status_incidents_sync(session=session) == 1
    assert status_service.status_incidents_sync(session=session) == 0
    session.commit()
    assert len(_mails(smtp, to="owner@acme.test", subject_has="Incident identified")) == 1
    model_enable(session=session, actor=operator, model_key="local-image-hd")
    session.commit()
    clock.freeze(utcnow() + timedelta(seconds=5))
    assert status_service.status_incidents_sync(session=session) == 1
    assert status_service.status_incidents_sync(session=session) == 0
    session.commit()
    assert len(_mails(smtp, to="owner@acme.test", subject_has="Incident resolved")) == 1
    assert session.exec(select(Incident)).one().status == "resolved"


def test_one_timed_out_mail_that_fails_leaves_the_others_of_its_batch_sent(
    session, smtp, monkeypatch
):
    """The sweep mails its runs in batches, one transaction each: a mail that fails is logged
    and skipped, and the other runs of the batch are mailed and their mail recorded."""
    from services import generation_sweep, notifications

    monkeypatch.setenv("CONCURRENT_RUNS_PER_USER", "10")
    reset_settings_cache()
    world = World(session)
    runs = [world.start(prompt=f"Spring sale {index}") for index in range(3)]
    broken = runs[1].id

    def notify(*, session, generation):
        if generation.id == broken:
            raise RuntimeError("the template broke")
        return notifications.run_failed_notify(session=session, generation=generation)

    monkeypatch.setattr(generation_sweep, "run_failed_notify", notify)
    swept = generations_sweep_stuck(now=utcnow() + timedelta(minutes=20))

    assert swept.timed_out == 3  # every refund stands
    subjects = [str(m["Subject"]) for m in _mails(smtp, subject_has="failed")]
    mailed = [run.public_id for run in runs if any(run.public_id in s for s in subjects)]
    assert mailed == [runs[0].public_id, runs[2].public_id]
    recorded = session.exec(select(OutboxMail).where(col(OutboxMail.subject).contains("failed")))
    assert len(recorded.all()) == 2
