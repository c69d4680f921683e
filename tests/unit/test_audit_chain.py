"""The audit log is hash-chained: any edited, deleted or inserted row fails verification there."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlmodel import select

from models import AuditLogEntry
from services.audit import audit_csv, audit_record, audit_search, audit_verify
from tests.factories import make_org, make_user


def _write(session, org, user, count=5):
    for index in range(count):
        audit_record(
            session=session,
            action="member.role_changed",
            actor_user_id=user.id,
            org_id=org.id,
            target_type="membership",
            target_id=index,
            details={"to": "admin", "index": index},
        )
    session.commit()


def test_an_untouched_chain_verifies(session):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner)
    _write(session, org, owner)
    check = audit_verify(session=session, org_id=org.id)
    assert check.ok and check.checked >= 5
    assert "Integrity verified" in check.message


def test_an_edited_row_fails_verification_at_that_row(session):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner)
    _write(session, org, owner)
    rows = session.exec(
        select(AuditLogEntry)
        .where(AuditLogEntry.org_id == org.id)
        .order_by(AuditLogEntry.chain_seq)
    ).all()
    victim = rows[3]
    # Someone with database access rewrites what happened (raw SQL, as an attacker would).
    session.execute(
        text("UPDATE audit_log_entries SET details = :d WHERE id = :id"),
        {"d": '{"to": "owner", "index": 2}', "id": victim.id},
    )
    session.commit()
    session.expire_all()
    check = audit_verify(session=session, org_id=org.id)
    assert not check.ok
    assert check.broken_entry_id == victim.id
    assert f"#{victim.id}" in check.message and "changed" in check.message


def test_a_deleted_row_fails_verification_at_the_next_row(session):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner)
    _write(session, org, owner)
    rows = session.exec(
        select(AuditLogEntry)
        .where(AuditLogEntry.org_id == org.id)
        .order_by(AuditLogEntry.chain_seq)
    ).all()
    session.execute(text("DELETE FROM audit_log_entries WHERE id = :id"), {"id": rows[2].id})
    session.commit()
    check = audit_verify(session=session, org_id=org.id)
    assert not check.ok and check.broken_entry_id == rows[3].id


def test_chains_of_organizations_are_separate(session):
    owner = make_user(session, "owner@acme.test")
    acme = make_org(session, owner, "Acme")
    other = make_org(session, make_user(session, "other@other.test"), "Other Co")
    _write(session, acme, owner, 2)
    _write(session, other, owner, 3)
    seqs = session.exec(
        select(AuditLogEntry.chain_seq)
        .where(AuditLogEntry.org_id == other.id)
        .order_by(AuditLogEntry.chain_seq)
    ).all()
    assert seqs == list(range(1, len(seqs) + 1))
    assert audit_verify(session=session, org_id=acme.id).ok
    assert audit_verify(session=session, org_id=other.id).ok


def test_search_filters_and_csv_defuses_formulas(session):
    owner = make_user(session, "owner@acme.test", "Olivia")
    org = make_org(session, owner)
    audit_record(
        session=session,
        action="credits.refunded",
        actor_user_id=owner.id,
        org_id=org.id,
        details={"reason": "=HYPERLINK(1)"},
    )
    _write(session, org, owner, 2)
    rows = audit_search(session=session, org_id=org.id, action="credits.")
    assert [row.action for row in rows] == ["credits.refunded"]
    assert audit_search(session=session, org_id=org.id, actor="nobody") == []
    assert audit_search(session=session, org_id=org.id, actor="olivia")
    text_csv = audit_csv(rows)
    assert text_csv.splitlines()[0] == "id,time_utc,actor,action,target,details"
    assert "reason==HYPERLINK" in text_csv  # inside the cell, not at its start


def _raw_entry(session, org, action):
    session.execute(
        text(
            "INSERT INTO audit_log_entries (org_id, action, target_type, target_id, details, "
            "created_at) VALUES (:org, :action, 'generation', 'gen_x', '{}', CURRENT_TIMESTAMP)"
        ),
        {"org": org.id, "action": action},
    )
    session.commit()


def test_entries_a_bulk_job_inserts_are_sealed_into_the_chain_by_the_next_entry(session):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner)
    _write(session, org, owner, 2)
    _raw_entry(session, org, "generation.timed_out")  # the PostgreSQL sweep writes plain SQL
    check = audit_verify(session=session, org_id=org.id)
    assert check.ok and check.unsealed == 1 and "linked into the chain" in check.message
    _write(session, org, owner, 1)
    check = audit_verify(session=session, org_id=org.id)
    assert check.ok and check.unsealed == 0 and check.unchained == 0
    sealed = session.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "generation.timed_out")
    ).one()
    assert sealed.entry_hash and sealed.chain_seq
    session.execute(
        text("UPDATE audit_log_entries SET target_id = 'gen_y' WHERE id = :id"), {"id": sealed.id}
    )
    session.commit()
    session.expire_all()
    assert audit_verify(session=session, org_id=org.id).broken_entry_id == sealed.id


def test_entries_older_than_the_chain_are_reported_not_checked(session):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner)
    session.commit()  # the organization's first entry is chained when it commits
    session.execute(
        text("UPDATE audit_log_entries SET chain_seq = NULL, prev_hash = NULL, entry_hash = NULL")
    )
    session.commit()
    _write(session, org, owner, 2)
    check = audit_verify(session=session, org_id=org.id)
    assert check.ok and check.unchained >= 1 and "predate chaining" in check.message


def test_rewriting_a_row_and_every_later_hash_without_the_key_is_detected(session):
    """An attacker with database access edits entry 3 and recomputes its hash and every later
    one (as the unkeyed chain allowed); without SECRET_KEY the hashes cannot match."""
    import hashlib

    from services.audit import _content

    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner)
    _write(session, org, owner, 5)
    rows = session.exec(
        select(AuditLogEntry)
        .where(AuditLogEntry.org_id == org.id)
        .order_by(AuditLogEntry.chain_seq)
    ).all()
    prev_hash = rows[1].entry_hash
    rows[2].details = {"to": "owner", "index": 1}
    for entry in rows[2:]:
        entry.prev_hash = prev_hash
        entry.entry_hash = hashlib.sha256((prev_hash + "\n" + _content(entry)).encode()).hexdigest()
        prev_hash = entry.entry_hash
        session.execute(
            text(
                "UPDATE audit_log_entries SET details = :d, prev_hash = :p, entry_hash = :h "
                "WHERE id = :id"
            ),
            {
                "d": json.dumps(entry.details),
                "p": entry.prev_hash,
                "h": entry.entry_hash,
                "id": entry.id,
            },
        )
    session.commit()
    session.expire_all()
    check = audit_verify(session=session, org_id=org.id)
    assert not check.ok and check.broken_entry_id == rows[2].id
    assert f"#{rows[2].id}" in check.message


def test_an_entry_is_chained_when_its_transaction_commits_and_never_if_it_rolls_back(session):
    owner = make_user(session, "owner@acme.test")
    org = make_org(session, owner)
    session.commit()
    entry = audit_record(session=session, action="test.kept", actor_user_id=None, org_id=org.id)
    assert entry.chain_seq is None  # no chain lock is taken while the unit of work goes on
    with session.begin_nested() as savepoint:
        audit_record(session=session, action="test.undone", actor_user_id=None, org_id=org.id)
        savepoint.rollback()
    session.commit()
    session.refresh(entry)
    assert entry.chain_seq == 2 and entry.entry_hash
    audit_record(session=session, action="test.rolled_back", actor_user_id=None, org_id=org.id)
    session.rollback()
    audit_record(session=session, action="test.next", actor_user_id=None, org_id=org.id)
    session.commit()
    actions = session.exec(
        select(AuditLogEntry.action)
        .where(AuditLogEntry.org_id == org.id)
        .order_by(AuditLogEntry.chain_seq)
    ).all()
    assert actions == ["org.created", "test.kept", "test.next"]
    assert audit_verify(session=session, org_id=org.id).ok
