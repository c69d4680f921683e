"""Connections, API keys, request logs, audit log, support, job runs, outgoing mail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, millicredits_field, utc_datetime_field


class OAuthConnection(SQLModel, table=True):
    """An organization's OAuth link to a social/ad platform. Tokens are encrypted at rest."""

    __tablename__ = "oauth_connections"
    __table_args__ = (
        UniqueConstraint("org_id", "provider_key", "account_id", name="uq_connection_account"),
        Index("ix_connections_status_expires", "status", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    connected_by_user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    provider_key: str = Field(max_length=32)
    account_id: str = Field(default="", max_length=255)
    account_label: str = Field(default="", max_length=255)
    scopes: list = json_field(list)
    access_token_encrypted: str = Field(default="")
    refresh_token_encrypted: str | None = Field(default=None)
    expires_at: datetime | None = utc_datetime_field()
    status: str = Field(default="active", max_length=16)  # ConnectionStatus
    last_refreshed_at: datetime | None = utc_datetime_field()
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()


class ApiKey(SQLModel, table=True):
    """Shown once at creation; only its hash and a short display prefix are kept."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=120)
    prefix: str = Field(max_length=24)
    key_hash: str = Field(max_length=128, unique=True)
    scopes: list = json_field(list)
    created_by_user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()
    last_used_at: datetime | None = utc_datetime_field()
    revoked_at: datetime | None = utc_datetime_field()
    # Public API (services/api_keys.py): the key works only in this project when set; it
    # stops working at `expires_at`; `daily_cap_credits` caps what it may spend per UTC day;
    # `rate_limit_per_minute` overrides API_RATE_LIMIT_PER_MINUTE for this key.
    project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="SET NULL")
    expires_at: datetime | None = utc_datetime_field()
    daily_cap_credits: int | None = Field(default=None)
    rate_limit_per_minute: int | None = Field(default=None)
    revoked_by_user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )


class RequestLog(SQLModel, table=True):
    __tablename__ = "request_logs"
    __table_args__ = (
        Index("ix_request_logs_org_created", "org_id", "created_at"),
        Index("ix_request_logs_created", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=64, unique=True)
    org_id: int | None = Field(default=None, foreign_key="organizations.id", ondelete="CASCADE")
    api_key_id: int | None = Field(default=None, foreign_key="api_keys.id", ondelete="SET NULL")
    method: str = Field(max_length=8)
    path: str = Field(max_length=300)
    status_code: int = Field(default=0)
    error_code: str | None = Field(default=None, max_length=64)
    model_key: str | None = Field(default=None, max_length=64)
    duration_ms: int = Field(default=0)
    created_at: datetime = created_at_field()
    # What the request did: its run (if it started one), credits charged, streamed or not.
    # Prompt and output bodies are never logged.
    generation_id: int | None = Field(
        default=None, foreign_key="generations.id", ondelete="SET NULL"
    )
    millicredits: int = millicredits_field()
    stream: bool = Field(default=False)


class AuditLogEntry(SQLModel, table=True):
    """One privileged action. Entries of one organization (or of the platform, org_id NULL)
    form a hash chain: `entry_hash` covers the entry's content and the previous `entry_hash`,
    so editing or deleting a row breaks verification from that row on (services/audit.py)."""

    __tablename__ = "audit_log_entries"
    __table_args__ = (
        Index("ix_audit_org_created", "org_id", "created_at"),
        Index("ix_audit_chain", "org_id", "chain_seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int | None = Field(default=None, foreign_key="organizations.id", ondelete="SET NULL")
    actor_user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(default="", max_length=32)
    target_id: str = Field(default="", max_length=64)
    details: dict = json_field(dict)
    created_at: datetime = created_at_field()
    chain_seq: int | None = Field(default=None)
    prev_hash: str | None = Field(default=None, max_length=64)
    entry_hash: str | None = Field(default=None, max_length=64)


class SupportTicket(SQLModel, table=True):
    __tablename__ = "support_tickets"
    __table_args__ = (
        Index("ix_support_status_created", "status", "created_at"),
        UniqueConstraint("idempotency_key", name="uq_support_ticket_idempotency"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int | None = Field(default=None, foreign_key="organizations.id", ondelete="SET NULL")
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="SET NULL")
    tool_key: str | None = Field(default=None, max_length=64)
    occurred_at: datetime | None = utc_datetime_field()
    error_code: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=64)
    subject: str = Field(max_length=200)
    body: str = Field(default="")
    status: str = Field(default="open", max_length=16)  # TicketStatus
    assignee_user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
    # Help center support flow (services/support.py): where the person was, how urgent, when due.
    generation_public_id: str | None = Field(default=None, max_length=40)
    model_key: str | None = Field(default=None, max_length=64)
    priority: str = Field(default="normal", max_length=16)  # low | normal | high | urgent
    due_at: datetime | None = utc_datetime_field()
    idempotency_key: str | None = Field(default=None, max_length=80)


class JobRun(SQLModel, table=True):
    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_started", "job_id", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=64)
    host: str = Field(default="", max_length=120)
    status: str = Field(default="running", max_length=16)  # JobRunStatus
    items: int = Field(default=0)
    errors: int = Field(default=0)
    error_detail: str | None = Field(default=None)
    started_at: datetime = created_at_field()
    finished_at: datetime | None = utc_datetime_field()


class OutboxMail(SQLModel, table=True):
    """Every mail the app sends; in development without SMTP this is the outbox page."""

    __tablename__ = "outbox_mail"

    id: int | None = Field(default=None, primary_key=True)
    to_address: str = Field(max_length=320, index=True)
    subject: str = Field(max_length=300)
    body_text: str = Field(default="")
    delivery: str = Field(default="outbox", max_length=16)  # outbox | smtp | failed
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()
