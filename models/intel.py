"""Competitor Intel: the sources a report was built from (one row per URL or pasted text)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field, utc_datetime_field


class CompetitorSource(SQLModel, table=True):
    """One source of a report: what was fetched (or refused), when, and what it said.

    `source_key` ("S1", "S2", ...) is what the report's claims cite; the citation validator
    (services/intel/schema.py) accepts only keys of the report's usable sources.
    """

    __tablename__ = "competitor_sources"
    __table_args__ = (
        UniqueConstraint("report_id", "source_key", name="uq_competitor_source_key"),
        Index("ix_competitor_sources_report", "report_id", "position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="competitor_reports.id", ondelete="CASCADE")
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    position: int = Field(default=0)
    source_key: str = Field(max_length=8)
    kind: str = Field(default="url", max_length=8)  # url | pasted
    url: str = Field(default="", max_length=2000)  # as requested
    final_url: str = Field(default="", max_length=2000)  # after redirects
    # fetched | truncated | refused | failed (refused: robots.txt, the address guard, a type)
    outcome: str = Field(default="pending", max_length=16)
    http_status: int | None = Field(default=None)
    fetched_at: datetime | None = utc_datetime_field()
    content_hash: str = Field(default="", max_length=64)  # sha256 of the bytes read
    bytes_read: int = Field(default=0)
    title: str = Field(default="", max_length=300)
    excerpt: str = Field(default="", max_length=600)
    text: str = Field(default="")  # the extracted main text (bounded)
    blocks: list = json_field(list)  # [[tag, text], ...] the structure the local builder reads
    message: str = Field(default="", max_length=500)  # why it was refused or failed
    created_at: datetime = created_at_field()
