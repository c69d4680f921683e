"""Housekeeping jobs: invite expiry, session purge, Free monthly credits, usage roll-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from core import clock
from models import (
    CreditLedgerEntry,
    Invite,
    Organization,
    User,
    UserSession,
)
from services import housekeeping
from services.credits import balance_get, ledger_sum

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
C = 1000


@pytest.fixture(autouse=True)
def frozen():
    clock.freeze(NOW)
    yield
    clock.freeze(None)


def org(session: Session, slug: str, plan_key: str = "free", deleted: bool = False) -> Organization:
    row = Organization(
        slug=slug, name=slug.title(), plan_key=plan_key, deleted_at=NOW if deleted else None
    )
    session.add(row)
    session.flush()
    return row


def test_pending_invites_past_expiry_become_expired(engine, session):
    acme = org(session, "acme")
    rows = {
        "old": Invite(
            org_id=acme.id,
            email="a@x.test",
            role="editor",
            token_hash="h1",
            expires_at=NOW - timedelta(minutes=1),
        ),
        "fresh": Invite(
            org_id=acme.id,
            email="b@x.test",
            role="editor",
            token_hash="h2",
            expires_at=NOW + timedelta(days=1),
        ),
        "accepted": Invite(
            org_id=acme.id,
            email="c@x.test",
            role="editor",
            token_hash="h3",
            status="accepted",
            expires_at=NOW - timedelta(days=1),
        ),
    }
    session.add_all(rows.values())
    session.commit()

    assert housekeeping.invites_expire_due() == 1
    assert housekeeping.invites_expire_due() == 0  # idempotent
    session.expire_all()
    statuses = {row.email: row.status for row in session.exec(select(Invite)).all()}
    assert statuses == {"a@x.test": "expired", "b@x.test": "pending", "c@x.test": "accepted"}


def test_sessions_past_absolute_expiry_are_deleted(engine, session):
    user = User(email="u@x.test")
    session.add(user)
    session.flush()
    session.add_all(
        [
            UserSession(
                user_id=user.id,
                token_hash="live",
                expires_at=NOW + timedelta(days=3),
                activated_at=NOW,
            ),
            UserSession(
                user_id=user.id,
                token_hash="dead",
                expires_at=NOW - timedelta(seconds=1),
                activated_at=NOW,
            ),
            UserSession(
                user_id=user.id, token_hash="handoff", expires_at=NOW - timedelta(minutes=5)
            ),
            UserSession(
                user_id=user.id,
                token_hash="revoked-long-ago",
                expires_at=NOW + timedelta(days=3),
                revoked_at=NOW - timedelta(days=31),
            ),
            UserSession(
                user_id=user.id,
                token_hash="revoked-recently",
                expires_at=NOW + timedelta(days=3),
                revoked_at=NOW,
            ),
        ]
    )
    session.commit()

    assert housekeeping.sessions_purge_expired() == 3
    assert housekeeping.sessions_purge_expired() == 0
    session.expire_all()
    left = sorted(row.token_hash for row in session.exec(select(UserSession)).all())
    assert left == ["live", "revoked-recently"]


def test_free_orgs_get_their_monthly_credits_once_per_month(engine, session):
    free = org(session, "free-org")
    paid = org(session, "paid-org", plan_key="growth")
    gone = org(session, "gone-org", deleted=True)
    session.commit()

    first = housekeeping.monthly_credit_grants()
    again = housekeeping.monthly_credit_grants()

    assert (first.items, first.errors, again.items) == (1, 0, 0)
    entries = session.exec(select(CreditLedgerEntry)).all()
    assert [(e.org_id, e.idempotency_key, e.amount_millicredits) for e in entries] == [
        (free.id, f"monthly-grant:{free.id}:2026-11", 50 * C)
    ]
    assert "November 2026" in entries[0].memo
    assert balance_get(session=session, org_id=paid.id).balance == 0
    assert balance_get(session=session, org_id=gone.id).balance == 0
    session.rollback()

    clock.freeze(datetime(2026, 12, 1, 0, 5, tzinfo=UTC))
    assert housekeeping.monthly_credit_grants().items == 1
    assert balance_get(session=session, org_id=free.id).balance == 100 * C
    assert ledger_sum(session=session, org_id=free.id) == 100 * C
