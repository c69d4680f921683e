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


def _new_dict() -> dict:
    return {}


def _new_list() -> list:
    return []


# Every new row asks pydantic whether each default factory takes the validated data, which
# inspects the factory's signature each time; for the builtins `dict` and `list` that means
# parsing their text signature (about 0.15 ms per row). Plain functions answer in microseconds.
_FACTORIES = {dict: _new_dict, list: _new_list}


def json_field(default_factory=dict) -> Any:
    return Field(
        default_factory=_FACTORIES.get(default_factory, default_factory),
        sa_type=JSON,
        nullable=False,
    )


def millicredits_field(*, default: int = 0) -> Any:
    """Credit amounts are integers of 1/1000 credit so every rate is exact."""
    return Field(default=default, sa_type=BigInteger, nullable=False)
