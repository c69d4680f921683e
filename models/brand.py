"""Brand kits (the voice every text output is written in) and the daily-cap ledger."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, utc_datetime_field

# A kit's scope: the whole organization, or one project ("project:<id>").
ORG_WIDE_SCOPE = "org"


class BrandKit(SQLModel, table=True):
    """Voice, audience and vocabulary of an organization or one of its projects.

    Assistant replies, Studio text runs and Competitor Intel ("us") are written with the kit of
    their project, else the organization's.
    """

    __tablename__ = "brand_kits"
    __table_args__ = (UniqueConstraint("org_id", "scope", name="uq_brand_kit_scope"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    scope: str = Field(default=ORG_WIDE_SCOPE, max_length=32)
    project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="CASCADE")
    name: str = Field(max_length=120)
    voice: list = json_field(list)  # adjectives: "confident", "warm"
    audience: str = Field(default="", max_length=1000)
    dos: list = json_field(list)
    donts: list = json_field(list)
    preferred_terms: list = json_field(list)
    avoided_terms: list = json_field(list)
    product_facts: list = json_field(list)
    example_phrases: list = json_field(list)
    updated_by_user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class DailyCapUse(SQLModel, table=True):
    """One unit taken from a daily cap, under the idempotency key of what took it.

    The key makes a retried take count once and a give-back happen at most once.
    """

    __tablename__ = "daily_cap_uses"
    __table_args__ = (Index("ix_daily_cap_uses_org_day", "org_id", "counter", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=160, unique=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    counter: str = Field(max_length=64)
    day: date
    created_at: datetime = created_at_field()
    released_at: datetime | None = utc_datetime_field()
