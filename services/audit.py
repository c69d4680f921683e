"""Audit log of privileged actions. Written in the caller's transaction (no commit here)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from models import AuditLogEntry


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
    """Append an audit entry, e.g. action="member.role_changed", target_type="membership"."""
    entry = AuditLogEntry(
        org_id=org_id,
        actor_user_id=actor_user_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
    )
    session.add(entry)
    session.flush()
    return entry


def audit_list(*, session: Session, org_id: int | None, limit: int = 100) -> list[AuditLogEntry]:
    query = (
        select(AuditLogEntry)
        .order_by(AuditLogEntry.created_at.desc(), AuditLogEntry.id.desc())
        .limit(limit)
    )
    if org_id is not None:
        query = query.where(AuditLogEntry.org_id == org_id)
    return list(session.exec(query))
