"""Accepting one invite from two places at once creates exactly one membership (PostgreSQL)."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs, urlparse

import pytest
from sqlmodel import Session, func, select

from core.clock import utcnow
from models import AuditLogEntry, Invite, Membership, Organization, User
from services import invites, orgs
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.postgres]


def _setup(engine, *, rounds: int = 1) -> tuple[int, list[tuple[int, str]]]:
    """An org on Growth with `rounds` pending invites; returns (org_id, [(user_id, token)])."""
    with Session(engine, expire_on_commit=False) as session:
        owner = User(email="olivia@example.com", name="Olivia", email_verified_at=utcnow())
        session.add(owner)
        session.flush()
        org = orgs.org_create(session=session, owner=owner, name="Acme", plan_key="growth")
        pairs = []
        for index in range(rounds):
            email = f"pat{index}@example.com"
            user = User(email=email, name=f"Pat {index}", email_verified_at=utcnow())
            session.add(user)
            session.flush()
            _, url = invites.invite_create(
                session=session, actor=owner, org_id=org.id, email=email, role="editor",
                base_url="http://test",
            )  # fmt: skip
            pairs.append((user.id, parse_qs(urlparse(url).query)["token"][0]))
        session.commit()
        return org.id, pairs


def _accept(engine, token: str, user_id: int) -> int:
    with Session(engine, expire_on_commit=False) as session:
        user = session.get(User, user_id)
        membership = invites.invite_accept(session=session, token=token, user=user)
        session.commit()
        return membership.id


def _run_together(*calls):
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def runner(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except BaseException as exc:  # surfaced by the assertions below
            results[index] = exc

    threads = [threading.Thread(target=runner, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def _memberships(engine, org_id: int, user_id: int) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count())
            .select_from(Membership)
            .where(Membership.org_id == org_id, Membership.user_id == user_id)
        ).one()


def test_two_simultaneous_accepts_create_one_membership(pg_engine):
    org_id, pairs = _setup(pg_engine, rounds=5)
    for user_id, token in pairs:
        results = _run_together(
            lambda t=token, u=user_id: _accept(pg_engine, t, u),
            lambda t=token, u=user_id: _accept(pg_engine, t, u),
        )
        assert all(isinstance(r, int) for r in results), results
        assert results[0] == results[1]
        assert _memberships(pg_engine, org_id, user_id) == 1
    with Session(pg_engine) as session:
        statuses = session.exec(select(Invite.status).where(Invite.org_id == org_id)).all()
        assert statuses == ["accepted"] * 5
        assert orgs.members_count(session=session, org_id=org_id) == 6
        # The second accept waited on the row lock and saw the first one's result: one audit
        # entry per invite, not two.
        accepted = session.exec(
            select(func.count())
            .select_from(AuditLogEntry)
            .where(AuditLogEntry.action == "invite.accepted")
        ).one()
        assert accepted == 5


def test_accept_racing_a_direct_add_keeps_the_existing_membership(pg_engine):
    """The unique (org_id, user_id) constraint decides; the accept returns the winner's row."""
    org_id, [(user_id, token)] = _setup(pg_engine)
    with Session(pg_engine, expire_on_commit=False) as first:
        direct = orgs.membership_add(session=first, org_id=org_id, user_id=user_id, role="viewer")
        # The accept blocks on the uncommitted unique key until this transaction commits.
        results = []
        thread = threading.Thread(target=lambda: results.append(_accept(pg_engine, token, user_id)))
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive()
        first.commit()
        thread.join(timeout=30)
    assert results == [direct.id]
    assert _memberships(pg_engine, org_id, user_id) == 1
    with Session(pg_engine) as session:
        assert session.exec(select(Invite.status)).one() == "accepted"
        assert session.get(Organization, org_id).deleted_at is None
