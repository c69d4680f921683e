"""PostgreSQL: event mail goes out once when two processes race for the same change.

Two sweepers timing out the same stuck runs mail each run's person once; two status syncs
resolving the same automatic incident mail its people once. Mail is counted in the outbox
table (no SMTP configured: every mail is recorded there)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import Session, select

from models import Generation, Incident, OutboxMail
from services import status as status_service
from services.generation_sweep import generations_sweep_stuck
from services.models_registry import model_enable, model_swap
from tests.conftest import requires_postgres
from tests.db.test_refund_sweep_pg import make_generations, run_together
from tests.factories import make_org, make_user

pytestmark = [requires_postgres, pytest.mark.postgres]


def _subjects(engine) -> Counter:
    with Session(engine) as session:
        return Counter((m.to_address, m.subject) for m in session.exec(select(OutboxMail)))


def test_two_sweepers_mail_each_timed_out_run_once(pg_engine):
    owner = make_user(pg_engine, "owner@race.test")
    org = make_org(pg_engine, owner, name="Race Co", credits=1_000_000)
    ids = make_generations(pg_engine, org.id, 60, minutes_ago=20, hold=1000)
    with Session(pg_engine) as session:
        for generation in session.exec(select(Generation).where(Generation.id.in_(ids))):
            generation.user_id = owner.id
            session.add(generation)
        session.commit()
    results = run_together(
        [
            lambda: generations_sweep_stuck(batch_size=7),
            lambda: generations_sweep_stuck(batch_size=7),
        ]
    )
    assert sum(r.timed_out for r in results) == 60
    mails = _subjects(pg_engine)
    failed = {key: n for key, n in mails.items() if "failed (timed_out)" in key[1]}
    assert len(failed) == 60 and set(failed.values()) == {1}
    assert {to for to, _ in failed} == {"owner@race.test"}


def test_two_syncs_resolving_one_automatic_incident_mail_once(pg_engine):
    operator = make_user(pg_engine, "op@studio.test", operator=True)
    owner = make_user(pg_engine, "owner@sync.test")
    make_org(pg_engine, owner, name="Sync Co")
    with Session(pg_engine) as session:
        model_swap(session=session, actor=operator, model_key="local-image-hd")
        status_service.status_incidents_sync(session=session)
        session.commit()
        model_enable(session=session, actor=operator, model_key="local-image-hd")
        session.commit()

    def sync() -> int:
        with Session(pg_engine) as session:
            changed = status_service.status_incidents_sync(session=session)
            session.commit()
            return changed

    results = run_together([sync, sync])
    assert sorted(results) == [0, 1]
    mails = _subjects(pg_engine)
    assert sum(n for (to, s), n in mails.items() if s.startswith("Incident resolved")) == 1
    assert sum(n for (to, s), n in mails.items() if s.startswith("Incident identified")) == 1
    with Session(pg_engine) as session:
        assert session.exec(select(Incident)).one().status == "resolved"
