"""Audit log of privileged actions, hash-chained so that editing or deleting a row is detectable.

Invariants
----------
* `audit_record` writes in the caller's transaction (it flushes, never commits), so an entry
  exists exactly when the action it describes was committed.
* The entries of one organization (and, separately, the platform's entries with no org) form a
  chain: entry n carries ``chain_seq = n``, ``prev_hash`` = entry n-1's ``entry_hash`` (""
  for the first) and ``entry_hash = HMAC(audit key, prev_hash + canonical content)``, the key
  derived from SECRET_KEY (`core.crypto.audit_chain_keys`). Changing any field, deleting a
  row or inserting one in the middle breaks verification at that row, and so does rewriting
  every later hash without the key. After a key rotation new entries use the new key and
  older ones still verify while the old key is listed in SECRET_KEY_PREVIOUS.
* Chaining happens at commit time, never earlier: `audit_record` inserts the entry unchained
  and a ``before_commit`` hook of the session flushes the rest of the unit of work, then
  takes the chain lock(s) (a transaction-scoped advisory lock on PostgreSQL, in organization
  order; ``BEGIN IMMEDIATE`` on SQLite), links the entries and commits. The chain lock is
  therefore the last lock a transaction takes and nothing waits while holding it (sealing only
  touches audit rows, which nobody else updates), so an audit entry written before or after a
  credit movement (account row lock) cannot deadlock with any other transaction. Two
  processes never give two entries the same sequence number.
* Entries written before chaining existed have NULL chain columns and are reported, not
  checked. Entries a set-based job inserts with plain SQL (the PostgreSQL timeout sweep) also
  arrive unchained; the next commit with an audit entry of that organization links them into
  the chain, in id order, with its own ("sealing"), and verification counts them until then.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, or_, text
from sqlmodel import Session, col, select

from core import db
from core.clock import as_utc
from core.crypto import audit_chain_keys
from models import AuditLogEntry, User

# PostgreSQL advisory lock namespace of the audit chains (first key of the two-key form).
_CHAIN_LOCK_NAMESPACE = 716_016
MAX_AUDIT_PAGE = 500
# session.info keys: ids of this transaction's entries waiting to be chained; hook installed.
_PENDING_KEY = "audit_chain_pending"
_HOOKED_KEY = "audit_chain_hooked"


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


def entry_hash_compute(entry: AuditLogEntry, prev_hash: str, key: bytes | None = None) -> str:
    """The hash an entry must carry given the previous entry's hash (current key by default)."""
    key = key if key is not None else audit_chain_keys()[0]
    return hmac.new(key, (prev_hash + "\n" + _content(entry)).encode(), "sha256").hexdigest()


def _hash_matches(entry: AuditLogEntry, prev_hash: str, keys: list[bytes]) -> bool:
    stored = entry.entry_hash or ""
    return any(
        hmac.compare_digest(stored, entry_hash_compute(entry, prev_hash, key)) for key in keys
    )


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

    Flushes in the caller's transaction, unchained; it is linked into the chain of `org_id`
    when the session commits (its ``chain_seq``/``entry_hash`` are set from then on). Takes no
    lock now, so it may be called anywhere in a unit of work.
    """
    entry = AuditLogEntry(
        org_id=org_id,
        actor_user_id=actor_user_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=json.loads(json.dumps(details or {}, default=str)),
    )
    # Store the time as the database will give it back (whole microseconds, UTC).
    entry.created_at = as_utc(entry.created_at)
    session.add(entry)
    session.flush()
    session.info.setdefault(_PENDING_KEY, {}).setdefault(org_id, []).append(entry.id)
    if not session.info.get(_HOOKED_KEY):
        session.info[_HOOKED_KEY] = True
        event.listen(session, "before_commit", _chain_pending)
        event.listen(session, "after_transaction_end", _drop_pending)
    return entry


def _drop_pending(session: Session, transaction) -> None:
    """The transaction ended (committed, rolled back or closed): nothing of it is pending."""
    if transaction.parent is None:
        session.info[_PENDING_KEY] = {}


def _chain_pending(session: Session) -> None:
    """before_commit: flush everything else, then lock each touched chain and link its
    entries. Runs last in the transaction, so the chain locks are the last locks taken."""
    pending: dict[int | None, list[int]] = session.info.get(_PENDING_KEY) or {}
    if not pending:
        return
    session.flush()
    for org_id in sorted(pending, key=lambda org: org or 0):
        _lock_chain(session, org_id)
        _seal(session, org_id, pending[org_id])
    session.info[_PENDING_KEY] = {}


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


def _seal(session: Session, org_id: int | None, own_ids: list[int] | None = None) -> None:
    """Link this transaction's entries (`own_ids`, those still present) and the chain's
    unsealed ones into the chain, in id order. The caller holds the chain lock."""
    seq, prev_hash = _chain_head(session, org_id)
    query = _unsealed_query(session, org_id)
    conditions = []
    if own_ids:
        conditions.append(col(AuditLogEntry.id).in_(own_ids))
    if query is not None:
        conditions.append(col(AuditLogEntry.id).in_(query.with_only_columns(AuditLogEntry.id)))
    if not conditions:
        return
    key = audit_chain_keys()[0]
    rows = session.exec(
        select(AuditLogEntry)
        .where(_chain_where(org_id), col(AuditLogEntry.chain_seq).is_(None), or_(*conditions))
        .order_by(col(AuditLogEntry.id))
        .execution_options(populate_existing=True)
    )
    for entry in rows:
        entry.chain_seq, entry.prev_hash = seq, prev_hash
        entry.created_at = as_utc(entry.created_at)
        entry.entry_hash = entry_hash_compute(entry, prev_hash, key)
        session.add(entry)
        seq, prev_hash = seq + 1, entry.entry_hash
    session.flush()


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
    keys = audit_chain_keys()
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
        elif not _hash_matches(entry, prev_hash, keys):
            problem = (
                "its content or hash was changed after it was written (or it was hashed with "
                "a key no longer listed in SECRET_KEY_PREVIOUS)."
            )
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
