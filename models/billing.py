"""Plans, subscriptions, the credit account and its append-only ledger, pools, webhooks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, millicredits_field, utc_datetime_field


class Plan(SQLModel, table=True):
    """A row of the plan catalog (catalog/plans.toml). `None` limits mean unlimited."""

    __tablename__ = "plans"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=64)
    rank: int = Field(default=0)  # ordering; model access compares ranks
    price_cents_monthly: int = Field(default=0)
    monthly_credits: int = Field(default=0)
    max_orgs_owned: int | None = Field(default=None)
    max_projects: int | None = Field(default=None)
    max_seats: int | None = Field(default=None)
    max_pending_invites: int | None = Field(default=None)
    assistant_messages_per_day: int | None = Field(default=None)
    competitor_reports_per_day: int | None = Field(default=None)
    tool_runs_per_day: int | None = Field(default=None)
    features: list = json_field(list)
    stripe_price_id: str | None = Field(default=None, max_length=255)
    is_public: bool = Field(default=True)
    updated_at: datetime = created_at_field()


class Subscription(SQLModel, table=True):
    __tablename__ = "subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", unique=True)
    plan_key: str = Field(max_length=32, foreign_key="plans.key")
    status: str = Field(default="active", max_length=16)  # SubscriptionStatus
    stripe_subscription_id: str | None = Field(default=None, max_length=255, unique=True)
    current_period_start: datetime | None = utc_datetime_field()
    current_period_end: datetime | None = utc_datetime_field(index=True)
    cancel_at_period_end: bool = Field(default=False)
    # A downgrade (or Free, for a cancel) that takes effect when the paid period ends.
    scheduled_plan_key: str | None = Field(default=None, max_length=32)
    last_event_at: datetime | None = utc_datetime_field()  # newest provider event applied
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class CreditAccount(SQLModel, table=True):
    """The organization's balance: a cache of SUM(ledger), updated in the same transaction."""

    __tablename__ = "credit_accounts"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", unique=True)
    balance_millicredits: int = millicredits_field()
    updated_at: datetime = created_at_field()


class CreditPool(SQLModel, table=True):
    """Credits earmarked for one project; runs in that project draw from it first."""

    __tablename__ = "credit_pools"
    __table_args__ = (UniqueConstraint("org_id", "project_id", name="uq_credit_pools_project"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    balance_millicredits: int = millicredits_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class CreditLedgerEntry(SQLModel, table=True):
    """Append-only. Every credit movement is one row with a unique idempotency key."""

    __tablename__ = "credit_ledger_entries"
    __table_args__ = (
        Index("ix_ledger_org_created", "org_id", "created_at"),
        Index("ix_ledger_generation", "generation_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    kind: str = Field(max_length=16)  # LedgerEntryKind
    amount_millicredits: int = millicredits_field()  # signed: + adds to the balance
    balance_after_millicredits: int = millicredits_field()
    pool_id: int | None = Field(default=None, foreign_key="credit_pools.id", ondelete="SET NULL")
    pool_amount_millicredits: int = (
        millicredits_field()
    )  # part of the movement drawn from/to the pool
    idempotency_key: str = Field(max_length=200, unique=True)
    actor_user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="SET NULL")
    generation_id: int | None = Field(default=None)
    reference: str = Field(default="", max_length=255)  # invoice id, Stripe event id, ...
    memo: str = Field(default="", max_length=500)
    created_at: datetime = created_at_field()


class Invoice(SQLModel, table=True):
    """Invoices and receipts mirrored from the payment provider (or local payment mode)."""

    __tablename__ = "invoices"
    __table_args__ = (Index("ix_invoices_org_created", "org_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    provider_invoice_id: str = Field(max_length=255, unique=True)
    kind: str = Field(max_length=16)  # "subscription" | "top_up"
    status: str = Field(max_length=16)  # "paid" | "open" | "failed" | "void"
    amount_cents: int = Field(default=0)
    currency: str = Field(default="usd", max_length=3)
    credits: int = Field(default=0)
    hosted_url: str = Field(default="", max_length=1000)
    period_start: datetime | None = utc_datetime_field()
    period_end: datetime | None = utc_datetime_field()
    created_at: datetime = created_at_field()


class ProcessedWebhookEvent(SQLModel, table=True):
    """An event id recorded in the same transaction as its effect: a redelivery is a no-op."""

    __tablename__ = "processed_webhook_events"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_webhook_provider_event"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=32)
    event_id: str = Field(max_length=255)
    event_type: str = Field(max_length=100)
    event_created_at: datetime | None = utc_datetime_field()
    payload: dict = json_field(dict)
    # What the event did ("credits_purchased", ...) or why it was not applied ("ignored: ...").
    outcome: str = Field(default="", max_length=500)
    processed_at: datetime = created_at_field()
