"""Operator console: adjustments waiting for a second operator, and read-only view-as grants."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from models.base import created_at_field, utc_datetime_field


class AdjustmentApproval(SQLModel, table=True):
    """A credit adjustment above the four-eyes threshold, waiting for another operator.

    `request_key` makes a double-submitted request one row; the ledger entry, once approved,
    carries the idempotency key ``operator-adjust:<id>`` so two approvals move credits once.
    """

    __tablename__ = "adjustment_approvals"
    __table_args__ = (Index("ix_adjustment_approvals_status_created", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    amount_millicredits: int = Field(sa_type=BigInteger, nullable=False)
    reason: str = Field(max_length=500)
    request_key: str = Field(max_length=80, unique=True)
    status: str = Field(default="pending", max_length=16)  # pending | approved | rejected
    requested_by_user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    decided_by_user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    ledger_entry_id: int | None = Field(default=None)
    created_at: datetime = created_at_field()
    decided_at: datetime | None = utc_datetime_field()


class ViewAsGrant(SQLModel, table=True):
    """An operator looking at an organization as its members do, read-only, for a short time."""

    __tablename__ = "view_as_grants"
    __table_args__ = (Index("ix_view_as_operator_org", "operator_user_id", "org_id"),)

    id: int | None = Field(default=None, primary_key=True)
    operator_user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    reason: str = Field(max_length=500)
    started_at: datetime = created_at_field()
    expires_at: datetime = utc_datetime_field(nullable=False)
    ended_at: datetime | None = utc_datetime_field()
