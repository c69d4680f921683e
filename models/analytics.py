"""Analytics: per-day usage roll-ups, the roll-up watermark, and per-day reconciliation."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, millicredits_field, utc_datetime_field


class AnalyticsRollup(SQLModel, table=True):
    """Usage events summed per UTC day x source x project x member x API key x model.

    0 stands for "none" in the project, member and API-key columns (so the unique key works
    on every database). Filled by the analytics roll-up job (`services.analytics.rollup`).
    """

    __tablename__ = "analytics_rollups"
    __table_args__ = (
        UniqueConstraint(
            "org_id",
            "day",
            "source",
            "project_id",
            "user_id",
            "api_key_id",
            "model_key",
            name="uq_analytics_rollup_group",
        ),
        Index("ix_analytics_rollups_day", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    day: date
    source: str = Field(max_length=16)
    project_id: int = Field(default=0)
    user_id: int = Field(default=0)
    api_key_id: int = Field(default=0)
    model_key: str = Field(max_length=64)
    modality: str = Field(max_length=8)
    runs: int = Field(default=0)
    failures: int = Field(default=0)  # outcome failed or timed_out
    refunds: int = Field(default=0)  # runs whose credits came back (every outcome but succeeded)
    units: int = Field(default=0)
    millicredits: int = millicredits_field()
    updated_at: datetime = created_at_field()


class AnalyticsRollupWatermark(SQLModel, table=True):
    """How far one UTC day is rolled up: its events before `rolled_through` are in the roll-up.

    Queries read the roll-up for a day's events before the watermark and the raw events
    only from it on (today's last minutes, or days never rolled up).
    """

    __tablename__ = "analytics_rollup_watermarks"

    day: date = Field(primary_key=True)
    rolled_through: datetime = utc_datetime_field(nullable=False)
    rolled_up_at: datetime = created_at_field()
    events: int = Field(default=0)


class ReconciliationDay(SQLModel, table=True):
    """One organization's UTC day checked against the ledger, the provider and payments.

    `issues` and `waiting` are lists of dicts naming the generation (public id), its project,
    member, API key and source, what disagrees and by how much, so a narrower scope on the
    page shows only its own.
    """

    __tablename__ = "analytics_reconciliation_days"
    __table_args__ = (
        UniqueConstraint("org_id", "day", name="uq_reconciliation_org_day"),
        Index("ix_reconciliation_day", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    day: date
    status: str = Field(max_length=16)  # reconciled | pending | mismatch
    metered_millicredits: int = millicredits_field()
    ledger_millicredits: int = millicredits_field()
    metered_units: int = Field(default=0)
    provider_units: int = Field(default=0)
    invoice_credits: int = Field(default=0)  # paid invoices of the day
    ledger_paid_credits: int = Field(default=0)  # purchase/grant entries matched to them
    difference_millicredits: int = millicredits_field()
    issues: list = json_field(list)
    waiting: list = json_field(list)
    computed_at: datetime = created_at_field()
