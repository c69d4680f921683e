"""Help center articles, searches with no result, incidents, notification preferences, the
low-balance alert flag, and the messages and notes of support tickets.

Full-text search indexes (SQLite FTS5 table `help_articles_fts`) are not tables of the model:
`services/help_center.py` creates and fills them when it loads the articles.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, millicredits_field, utc_datetime_field


class HelpArticle(SQLModel, table=True):
    """One Markdown file of `help/`, loaded idempotently (the file is the truth)."""

    __tablename__ = "help_articles"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=120, unique=True, index=True)
    title: str = Field(max_length=200)
    kind: str = Field(default="guide", max_length=16)  # guide | runbook | faq | policy | reference
    summary: str = Field(default="", max_length=500)
    tags: list = json_field(list)
    roles: list = json_field(list)
    error_codes: list = json_field(list)
    widget: str = Field(default="", max_length=32)  # model_rates | tools_overview | ""
    body: str = Field(default="")
    updated: str = Field(default="", max_length=10)  # YYYY-MM-DD from the front matter
    content_hash: str = Field(default="", max_length=64)
    sort_order: int = Field(default=0)
    loaded_at: datetime = created_at_field()


class HelpSearchMiss(SQLModel, table=True):
    """A search that found nothing, counted per normalized query (for operators)."""

    __tablename__ = "help_search_misses"

    id: int | None = Field(default=None, primary_key=True)
    query_key: str = Field(max_length=200, unique=True)
    query: str = Field(max_length=200)
    count: int = Field(default=1)
    first_at: datetime = created_at_field()
    last_at: datetime = created_at_field()


class Incident(SQLModel, table=True):
    """A platform incident, opened by an operator or automatically from a product signal."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_status_created", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    status: str = Field(default="investigating", max_length=16)  # IncidentStatus
    impact: str = Field(default="degraded", max_length=16)  # degraded | outage
    components: list = json_field(list)  # component keys
    org_ids: list = json_field(list)  # empty: every organization
    auto_key: str | None = Field(default=None, max_length=120, unique=True)
    created_by_user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
    resolved_at: datetime | None = utc_datetime_field()


class IncidentUpdate(SQLModel, table=True):
    __tablename__ = "incident_updates"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", ondelete="CASCADE", index=True)
    status: str = Field(max_length=16)
    body: str = Field(default="", max_length=2000)
    author_user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()


class NotificationPreference(SQLModel, table=True):
    """A person's choice for one kind of notification; no row means the default (on)."""

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "kind", name="uq_notification_pref_user_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    kind: str = Field(max_length=32)
    enabled: bool = Field(default=True)
    updated_at: datetime = created_at_field()


class LowBalanceAlert(SQLModel, table=True):
    """Whether an organization's low-balance alert is armed; flipped by a conditional update,
    so the mail goes out once per crossing however many workers look at the balance."""

    __tablename__ = "low_balance_alerts"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", unique=True)
    armed: bool = Field(default=True)
    last_sent_at: datetime | None = utc_datetime_field()
    last_balance_millicredits: int = millicredits_field()
    updated_at: datetime = created_at_field()


class SupportTicketMessage(SQLModel, table=True):
    """A message on a ticket: from the customer, a reply from support, or an internal note."""

    __tablename__ = "support_ticket_messages"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="support_tickets.id", ondelete="CASCADE", index=True)
    author_user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    kind: str = Field(max_length=16)  # customer | support | note
    body: str = Field(default="")
    mailed: bool = Field(default=False)
    created_at: datetime = created_at_field()
