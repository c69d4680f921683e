"""Column helpers shared by the tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime
from sqlmodel import Field

from core.clock import utcnow


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), nullable=False)


def utc_datetime_field(
    *, nullable: bool = True, index: bool = False, default: datetime | None = None
) -> Any:
    return Field(default=default, sa_type=DateTime(timezone=True), nullable=nullable, index=index)


def json_field(default_factory=dict) -> Any:
    return Field(default_factory=default_factory, sa_type=JSON, nullable=False)


def millicredits_field(*, default: int = 0) -> Any:
    """Credit amounts are integers of 1/1000 credit so every rate is exact."""
    return Field(default=default, sa_type=BigInteger, nullable=False)
