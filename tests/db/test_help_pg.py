"""The help center's PostgreSQL search (tsvector), and the low-balance alert and ticket
de-duplication when two workers act at once (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import Session, func, select

from models import Organization, OutboxMail, SupportTicket, User
from services import support as support_service
from services.credits import balance_get
from services.help_center import help_articles_sync, help_search, help_search_miss_record
from services.notifications import low_balance_check
from tests.conftest import requires_postgres
from tests.factories import make_org, make_user

pytestmark = [requires_postgres, pytest.mark.postgres]


def test_postgres_search_ranks_the_runbook_first_with_highlights(pg_session):
    help_articles_sync(session=pg_session)
    hits = help_search(session=pg_session, query="billing required")
    assert hits[0].slug == "billing-required"
    assert any(part.highlighted for part in hits[0].snippet)
    assert help_search(session=pg_session, query="rate limited")[0].slug == "api-integration"
    assert help_search(session=pg_session, query="zzqqxx") == []
    help_search_miss_record(session=pg_session, query="zzqqxx")
    help_search_miss_record(session=pg_session, query="ZZQQXX")


def _together(*calls):
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, fn):
        barrier.wait()
        results[index] = fn()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_workers_send_one_low_balance_mail(pg_engine):
    with Session(pg_engine, expire_on_commit=False) as session:
        owner = make_user(session, "owner@acme.test")
        org = make_org(session, owner)
        row = session.get(Organization, org.id)
        balance = balance_get(session=session, org_id=org.id).balance
        row.low_balance_alert_credits = balance // 1000 + 5
        session.add(row)
        session.commit()
        org_id = org.id

    def check():
        with Session(pg_engine) as session:
            sent = low_balance_check(session=session, org_id=org_id)
            session.commit()
            return sent

    for _round in range(5):
        results = _together(check, check)
        assert results.count(True) <= 1
    with Session(pg_engine) as session:
        assert session.exec(select(func.count()).select_from(OutboxMail)).one() == 1


def test_a_double_submit_from_two_tabs_files_one_ticket(pg_engine):
    with Session(pg_engine, expire_on_commit=False) as session:
        owner = make_user(session, "owner@acme.test")
        org = make_org(session, owner)
        session.commit()
        owner_id, org_id = owner.id, org.id

    def submit():
        with Session(pg_engine) as session:
            actor = session.get(User, owner_id)
            ticket = support_service.ticket_create(
                session=session,
                actor=actor,
                org_id=org_id,
                fields=support_service.TicketFields(subject="Invoice question"),
                idempotency_key="form-key-1",
            )
            session.commit()
            return ticket.id

    first, second = _together(submit, submit)
    assert first == second
    with Session(pg_engine) as session:
        assert session.exec(select(func.count()).select_from(SupportTicket)).one() == 1
