"""Audit log of privileged actions, hash-chained so that editing or deleting a row is detectable.

Invariants
----------
* `audit_record` writes in the caller's transaction (it flushes, never commits), so an entry
  exists exactly when the action it describes was committed.
* The entries of one organization (and, separately, the platform's entries with no org) form a
  chain: entry n carries ``chain_seq = n``, ``prev_hash`` = entry n-1's ``entry_hash`` (""
  for the first) and ``entry_hash = sha256(prev_hash + canonical content)``. Changing any
  field, deleting a row or inserting one in the middle breaks verification at that row.
* Appends to one chain are serialized: a transaction-scoped advisory lock on PostgreSQL (held
  until the caller commits), ``BEGIN IMMEDIATE`` on SQLite. Two processes never give two
  entries the same sequence number.
* Entries written before chaining existed have NULL chain columns and are reported, not
  checked. Entries a set-based job inserts with plain SQL (the PostgreSQL timeout sweep) also
  arrive unchained; the next `audit_record` of that organization links them into the chain,
  in id order, before its own entry ("sealing"), and verification counts them until then.
* The hash is not keyed: it detects edits made without recomputing every later hash, i.e.
  tampering by someone who does not also rewrite the rest of the chain.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, text
from sqlmodel import Session, col, select

from core import db
from core.clock import as_utc
from models import AuditLogEntry, User

# PostgreSQL advisory lock namespace of the audit chains (first key of the two-key form).
_CHAIN_LOCK_NAMESPACE = 716_016
MAX_AUDIT_PAGE = 500


def _content(entry: AuditLogEntry) -> str:
    created = as_utc(entry.created_at)
    return json.dumps(
        {
            "seq": entry.chain_seq,
            "org_id": entry.org_id,
            "actor_user_id": entry.actor_user_id,
            "action": entry.action,
            "target_type": entry.target_type or "",
            "target_id": entry.target_id or "",
            "details": entry.details or {},
            "created_at": created.isoformat(timespec="microseconds") if created else "",
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )


def entry_hash_compute(entry: AuditLogEntry, prev_hash: str) -> str:
    """The hash an entry must carry given the previous entry's hash."""
    return hashlib.sha256((prev_hash + "\n" + _content(entry)).encode()).hexdigest()


def _chain_where(org_id: int | None):
    return (
        col(AuditLogEntry.org_id).is_(None)
        if org_id is None
        else col(AuditLogEntry.org_id) == org_id
    )


def _lock_chain(session: Session, org_id: int | None) -> None:
    if db.is_postgres(session):
        session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
            {"namespace": _CHAIN_LOCK_NAMESPACE, "key": org_id or 0},
        )


def audit_record(
    *,
    session: Session,
    action: str,
    actor_user_id: int | None,
    org_id: int | None = None,
    target_type: str = "",
    target_id: str | int = "",
    details: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """Append an audit entry, e.g. action="member.role_changed", target_type="membership".

    Flushes in the caller's transaction; the chain of `org_id` stays locked until it commits.
    """
    _lock_chain(session, org_id)
    seq, prev_hash = _seal(session, org_id)
    entry = AuditLogEntry(
        org_id=org_id,
        actor_user_id=actor_user_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=json.loads(json.dumps(details or {}, default=str)),
        chain_seq=seq,
        prev_hash=prev_hash,
    )
    # Store the time as the database will give it back (whole microseconds, UTC).
    entry.created_at = as_utc(entry.created_at)
    entry.entry_hash = entry_hash_compute(entry, prev_hash)
    session.add(entry)
    session.flush()
    return entry


def _chain_head(session: Session, org_id: int | None) -> tuple[int, str]:
    last = session.exec(
        select(AuditLogEntry.chain_seq, AuditLogEntry.entry_hash)
        .where(_chain_where(org_id), col(AuditLogEntry.chain_seq).is_not(None))
        .order_by(col(AuditLogEntry.chain_seq).desc())
        .limit(1)
    ).first()
    return (int(last[0]) + 1, last[1] or "") if last else (1, "")


def _unsealed_query(session: Session, org_id: int | None):
    """Unchained entries written after the chain began (plain-SQL inserts of bulk jobs)."""
    first_id = session.exec(
        select(AuditLogEntry.id).where(_chain_where(org_id), col(AuditLogEntry.chain_seq) == 1)
    ).first()
    if first_id is None:
        return None
    return select(AuditLogEntry).where(
        _chain_where(org_id),
        col(AuditLogEntry.chain_seq).is_(None),
        col(AuditLogEntry.id) > first_id,
    )


def _seal(session: Session, org_id: int | None) -> tuple[int, str]:
    """Link unsealed entries into the chain (caller holds the chain lock); the next position."""
    seq, prev_hash = _chain_head(session, org_id)
    query = _unsealed_query(session, org_id)
    if query is None:
        return seq, prev_hash
    for entry in session.exec(query.order_by(col(AuditLogEntry.id))):
        entry.chain_seq, entry.prev_hash = seq, prev_hash
        entry.created_at = as_utc(entry.created_at)
        entry.entry_hash = entry_hash_compute(entry, prev_hash)
        session.add(entry)
        seq, prev_hash = seq + 1, entry.entry_hash
    session.flush()
    return seq, prev_hash


@dataclass(frozen=True)
class ChainCheck:
    """What `audit_verify` found. `broken_entry_id` is the first row that fails, if any."""

    ok: bool
    checked: int
    unchained: int
    broken_entry_id: int | None = None
    broken_seq: int | None = None
    problem: str = ""
    unsealed: int = 0  # written by a bulk job since the last audit entry; chained at the next

    @property
    def message(self) -> str:
        before = (
            f" {self.unchained} older entries predate chaining and are not covered."
            if self.unchained
            else ""
        )
        if self.unsealed:
            before += (
                f" {self.unsealed} newer entries written by a background job are linked into "
                "the chain with the next audit entry."
            )
        if self.ok:
            return f"Integrity verified: {self.checked} entries, chain intact.{before}"
        return (
            f"Integrity check FAILED at entry #{self.broken_entry_id} (position "
            f"{self.broken_seq}): {self.problem} Entries from there on cannot be trusted; "
            f"compare with a backup and contact security.{before}"
        )


def audit_verify(*, session: Session, org_id: int | None) -> ChainCheck:
    """Recompute the chain of `org_id` from its first entry; report the first broken row."""
    unchained = session.exec(
        select(func.count())
        .select_from(AuditLogEntry)
        .where(_chain_where(org_id), col(AuditLogEntry.chain_seq).is_(None))
    ).one()
    unsealed_query = _unsealed_query(session, org_id)
    unsealed = (
        session.exec(select(func.count()).select_from(unsealed_query.subquery())).one()
        if unsealed_query is not None
        else 0
    )
    unchained -= unsealed
    rows = session.exec(
        select(AuditLogEntry)
        .where(_chain_where(org_id), col(AuditLogEntry.chain_seq).is_not(None))
        .order_by(col(AuditLogEntry.chain_seq), col(AuditLogEntry.id))
        .execution_options(yield_per=500)
    )
    prev_hash, expected_seq, checked = "", 1, 0
    for entry in rows:
        problem = ""
        if entry.chain_seq != expected_seq:
            problem = (
                f"expected position {expected_seq} but found {entry.chain_seq}; "
                "an entry before it was deleted or duplicated."
            )
        elif (entry.prev_hash or "") != prev_hash:
            problem = "it does not link to the entry before it."
        elif entry.entry_hash != entry_hash_compute(entry, prev_hash):
            problem = "its content was changed after it was written."
        if problem:
            return ChainCheck(
                ok=False,
                checked=checked,
                unchained=int(unchained),
                broken_entry_id=entry.id,
                broken_seq=entry.chain_seq,
                problem=problem,
                unsealed=int(unsealed),
            )
        prev_hash, expected_seq, checked = entry.entry_hash or "", expected_seq + 1, checked + 1
    return ChainCheck(ok=True, checked=checked, unchained=int(unchained), unsealed=int(unsealed))


def audit_list(*, session: Session, org_id: int | None, limit: int = 100) -> list[AuditLogEntry]:
    query = (
        select(AuditLogEntry)
        .order_by(AuditLogEntry.created_at.desc(), AuditLogEntry.id.desc())
        .limit(limit)
    )
    if org_id is not None:
        query = query.where(AuditLogEntry.org_id == org_id)
    return list(session.exec(query))


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: str


def _details_text(details: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted((details or {}).items()))[:500]


def audit_search(
    *,
    session: Session,
    org_id: int,
    actor: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[AuditRow]:
    """An organization's entries, newest first, filtered by actor (name or email contains),
    action (prefix, e.g. "member." or "credits.refund") and a time range [since, until)."""
    query = (
        select(AuditLogEntry, User.email, User.name)
        .join(User, col(User.id) == col(AuditLogEntry.actor_user_id), isouter=True)
        .where(col(AuditLogEntry.org_id) == org_id)
    )
    actor = (actor or "").strip().lower()
    if actor:
        pattern = f"%{actor.replace('%', '').replace('_', '')}%"
        query = query.where(
            or_(func.lower(User.email).like(pattern), func.lower(User.name).like(pattern))
        )
    action = (action or "").strip()
    if action:
        query = query.where(col(AuditLogEntry.action).startswith(action, autoescape=True))
    if since is not None:
        query = query.where(col(AuditLogEntry.created_at) >= since)
    if until is not None:
        query = query.where(col(AuditLogEntry.created_at) < until)
    query = query.order_by(col(AuditLogEntry.created_at).desc(), col(AuditLogEntry.id).desc())
    rows = session.exec(query.limit(max(1, min(limit, MAX_AUDIT_PAGE))))
    return [
        AuditRow(
            id=entry.id,
            at=as_utc(entry.created_at),
            actor=(name or email or "") if entry.actor_user_id else "system",
            action=entry.action,
            target=f"{entry.target_type}:{entry.target_id}" if entry.target_type else "",
            details=_details_text(entry.details),
        )
        for entry, email, name in rows
    ]


def _csv_safe(value: str) -> str:
    """Spreadsheet apps run cells starting with = + - @ as formulas."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def audit_csv(rows: list[AuditRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "time_utc", "actor", "action", "target", "details"])
    for row in rows:
        writer.writerow(
            [
                row.id,
                row.at.strftime("%Y-%m-%d %H:%M:%S"),
                _csv_safe(row.actor),
                _csv_safe(row.action),
                _csv_safe(row.target),
                _csv_safe(row.details),
            ]
        )
    return buffer.getvalue()
