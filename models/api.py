"""Public API: the organization's API controls, and Idempotency-Key records of API runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, json_field


class ApiSettings(SQLModel, table=True):
    """Settings > API controls of one organization (no row = API on, every plan model)."""

    __tablename__ = "api_settings"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", unique=True)
    api_enabled: bool = Field(default=True)
    # Model keys the API may use; empty = every model the plan allows.
    allowed_model_keys: list = json_field(list)
    updated_by_user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    updated_at: datetime = created_at_field()


class ApiIdempotencyKey(SQLModel, table=True):
    """One `Idempotency-Key` of one API key: a retried create returns the first run."""

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (UniqueConstraint("api_key_id", "key", name="uq_api_idempotency_key"),)

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(foreign_key="api_keys.id", ondelete="CASCADE")
    key: str = Field(max_length=255)
    route: str = Field(max_length=64)
    generation_id: int | None = Field(
        default=None, foreign_key="generations.id", ondelete="CASCADE"
    )
    created_at: datetime = created_at_field()
