"""AI model registry, tools, generations, assets, usage, assistant chat, competitor reports."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, millicredits_field, utc_datetime_field


class AIModel(SQLModel, table=True):
    """A row of the model registry (catalog/models.toml)."""

    __tablename__ = "ai_models"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(max_length=120)
    modality: str = Field(max_length=8)  # Modality
    provider: str = Field(max_length=32)  # "local" | "openai_compatible"
    provider_model_id: str = Field(max_length=120)
    min_plan_key: str = Field(max_length=32, foreign_key="plans.key")
    tier: str = Field(default="standard", max_length=16)  # standard | premium
    rate_millicredits: int = millicredits_field()
    rate_unit: str = Field(max_length=16)  # RateUnit
    status: str = Field(default="active", max_length=16)  # ModelStatus
    backup_model_key: str | None = Field(default=None, max_length=64)
    status_changed_at: datetime | None = utc_datetime_field()
    status_reason: str = Field(default="", max_length=300)
    description: str = Field(default="", max_length=500)
    provider_base_url: str | None = Field(default=None, max_length=500)  # per-model override
    sort_order: int = Field(default=0)
    updated_at: datetime = created_at_field()


class Tool(SQLModel, table=True):
    """A studio tool (e.g. ad copy, social image). Shows its credits per standard run."""

    __tablename__ = "tools"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=120)
    modality: str = Field(max_length=8)
    default_model_key: str = Field(max_length=64)
    standard_params: dict = json_field(dict)
    description: str = Field(default="", max_length=500)
    sort_order: int = Field(default=0)


class Generation(SQLModel, table=True):
    __tablename__ = "generations"
    __table_args__ = (
        Index("ix_generations_status_started", "status", "started_at"),
        Index("ix_generations_org_created", "org_id", "created_at"),
        Index("ix_generations_status_lease", "status", "lease_expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=40, unique=True)  # "gen_..." shown to users and the API
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    project_id: int | None = Field(
        default=None, foreign_key="projects.id", ondelete="SET NULL", index=True
    )
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    api_key_id: int | None = Field(default=None, foreign_key="api_keys.id", ondelete="SET NULL")
    model_key: str = Field(max_length=64)
    tool_key: str | None = Field(default=None, max_length=64)
    modality: str = Field(max_length=8)
    prompt: str = Field(default="")
    params: dict = json_field(dict)
    status: str = Field(default="queued", max_length=16)  # GenerationStatus
    status_history: list = json_field(list)  # [{"status": ..., "at": iso8601}]
    failure_code: str | None = Field(default=None, max_length=64)
    failure_reason: str | None = Field(default=None, max_length=1000)
    estimate_millicredits: int = millicredits_field()
    held_millicredits: int = millicredits_field()
    charged_millicredits: int = millicredits_field()
    output_text: str | None = Field(default=None)
    late_result: dict | None = Field(default=None, sa_type=JSON)
    retry_of_id: int | None = Field(default=None, foreign_key="generations.id", ondelete="SET NULL")
    request_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = created_at_field()
    started_at: datetime | None = utc_datetime_field()
    finished_at: datetime | None = utc_datetime_field()
    # The run executor (services/run_engine.py): when the run was last handed to the queue,
    # which worker claimed it, and until when that worker's lease runs (renewed while alive).
    enqueued_at: datetime | None = utc_datetime_field()
    worker_id: str | None = Field(default=None, max_length=120)
    lease_expires_at: datetime | None = utc_datetime_field()
    # The brand kit a text run was written with (its label stays if the kit is removed).
    brand_kit_id: int | None = Field(default=None, foreign_key="brand_kits.id", ondelete="SET NULL")
    brand_kit_label: str | None = Field(default=None, max_length=200)


class Asset(SQLModel, table=True):
    __tablename__ = "assets"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=40, unique=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    project_id: int | None = Field(
        default=None, foreign_key="projects.id", ondelete="SET NULL", index=True
    )
    generation_id: int | None = Field(
        default=None, foreign_key="generations.id", ondelete="SET NULL", index=True
    )
    kind: str = Field(max_length=8)  # Modality of the content
    storage_backend: str = Field(max_length=8)  # "local" | "s3"
    storage_key: str = Field(max_length=500)
    content_type: str = Field(max_length=100)
    size_bytes: int = Field(default=0)
    filename: str = Field(default="", max_length=200)
    created_at: datetime = created_at_field()


class UsageEvent(SQLModel, table=True):
    """Metered usage per run; provider-reported figures may arrive later (reconciliation)."""

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_org_occurred", "org_id", "occurred_at"),
        Index("ix_usage_reconciled", "reconciled", "occurred_at"),
        # The analytics roll-up reads one UTC day of every organization's events at a time.
        Index("ix_usage_occurred", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="SET NULL")
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    generation_id: int | None = Field(
        default=None, foreign_key="generations.id", ondelete="SET NULL", unique=True
    )
    source: str = Field(default="studio", max_length=16)  # studio | api | assistant | intel
    model_key: str = Field(max_length=64)
    modality: str = Field(max_length=8)
    units: int = Field(default=0)  # tokens, assets or seconds, per the model's rate unit
    millicredits: int = millicredits_field()
    reconciled: bool = Field(default=False)
    provider_units: int | None = Field(default=None)
    # How the run ended: succeeded | failed | timed_out | refunded (credits 0 unless succeeded).
    outcome: str = Field(default="succeeded", max_length=16)
    request_id: str | None = Field(default=None, max_length=64)
    occurred_at: datetime = created_at_field()


class DailyUsageCounter(SQLModel, table=True):
    """Per-day counters behind daily caps (Assistant messages, Intel reports, tool runs); UTC days."""

    __tablename__ = "daily_usage_counters"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id", "counter", "day", name="uq_daily_usage_counter"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    user_id: int = Field(default=0)  # 0 = the whole organization
    counter: str = Field(max_length=64)
    day: date
    count: int = Field(default=0)


class AssistantMessage(SQLModel, table=True):
    __tablename__ = "assistant_messages"
    __table_args__ = (
        Index("ix_assistant_conversation", "conversation_id", "created_at"),
        # The sweep of dead replies looks up streaming rows by heartbeat every 30 s.
        Index("ix_assistant_messages_status_heartbeat", "status", "heartbeat_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    conversation_id: str = Field(max_length=40)  # AssistantConversation.public_id
    role: str = Field(max_length=16)  # user | assistant
    content: str = Field(default="")
    model_key: str | None = Field(default=None, max_length=64)
    created_at: datetime = created_at_field()
    # An assistant reply: streaming -> done | failed | stopped | interrupted (a streaming reply
    # whose heartbeat went stale; the sweep stores it, and Continue resumes it).
    status: str = Field(default="done", max_length=16)
    heartbeat_at: datetime | None = utc_datetime_field()
    stop_requested: bool = Field(default=False)
    tokens: int = Field(default=0)
    failure_reason: str | None = Field(default=None, max_length=500)
    # The daily-cap unit a user message took (given back if its reply fails before a token).
    cap_key: str | None = Field(default=None, max_length=160)
    brand_kit_id: int | None = Field(default=None, foreign_key="brand_kits.id", ondelete="SET NULL")
    brand_kit_label: str = Field(default="", max_length=200)
    flagged_terms: list = json_field(list)  # the kit's avoided terms the reply used
    updated_at: datetime | None = utc_datetime_field()


class CompetitorReport(SQLModel, table=True):
    """A Competitor Intel report: a run like a generation (queued -> running -> succeeded |
    failed) whose sources live in `competitor_sources` (models/intel.py)."""

    __tablename__ = "competitor_reports"
    __table_args__ = (
        Index("ix_competitor_reports_org_created", "org_id", "created_at"),
        Index("ix_competitor_reports_org_competitor", "org_id", "competitor_key", "created_at"),
        Index("ix_competitor_reports_status_lease", "status", "lease_expires_at"),
        Index("ix_competitor_reports_status_started", "status", "started_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="SET NULL")
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    competitor: str = Field(max_length=200)
    status: str = Field(default="queued", max_length=16)
    content: str = Field(default="")  # the report as Markdown once it succeeded
    created_at: datetime = created_at_field()
    # "rep_..." shown to people; the request's one-time key makes a double submit act once.
    public_id: str | None = Field(default=None, max_length=40, unique=True)
    request_key: str | None = Field(default=None, max_length=120, unique=True)
    # The competitor's name folded (case, punctuation): reports on it form one history.
    competitor_key: str = Field(default="", max_length=200)
    focus: str = Field(default="positioning", max_length=16)
    urls: list = json_field(list)
    pasted_material: str = Field(default="")
    brand_kit_label: str = Field(default="", max_length=200)
    model_key: str = Field(default="", max_length=64)
    status_history: list = json_field(list)  # [{"status": ..., "at": iso8601}]
    stage: str = Field(default="", max_length=200)  # progress while running, for people
    report: dict | None = Field(default=None, sa_type=JSON)  # services/intel/schema.py
    changes: list | None = Field(default=None, sa_type=JSON)  # vs `previous_report_id`
    previous_report_id: int | None = Field(
        default=None, foreign_key="competitor_reports.id", ondelete="SET NULL"
    )
    failure_code: str | None = Field(default=None, max_length=64)
    failure_reason: str | None = Field(default=None, max_length=1000)
    estimate_millicredits: int = millicredits_field()
    held_millicredits: int = millicredits_field()
    charged_millicredits: int = millicredits_field()
    hold_entry_id: int | None = Field(default=None)
    started_at: datetime | None = utc_datetime_field()
    finished_at: datetime | None = utc_datetime_field()
    # The run executor, as for generations: last hand-off, claiming worker and its lease.
    enqueued_at: datetime | None = utc_datetime_field()
    worker_id: str | None = Field(default=None, max_length=120)
    lease_expires_at: datetime | None = utc_datetime_field()
