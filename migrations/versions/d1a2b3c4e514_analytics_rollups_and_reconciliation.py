"""analytics roll-ups and reconciliation

Revision ID: d1a2b3c4e514
Revises: d1a2b3c4e513
Create Date: 2026-11-26 05:30:00.000000

Analytics reads per-day roll-ups (``analytics_rollups``) up to each day's watermark and the
raw usage events after it; the reconciliation job writes one row per organization and day.
The earlier per-day table (``usage_daily_rollups``), which nothing reads any more, is dropped;
its figures are recomputed from the usage events by the ``analytics_rollup`` job.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "d1a2b3c4e514"
down_revision: str | None = "d1a2b3c4e513"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "analytics_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", _string(16), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("model_key", _string(64), nullable=False),
        sa.Column("modality", _string(8), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("refunds", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("millicredits", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "org_id",
            "day",
            "source",
            "project_id",
            "user_id",
            "api_key_id",
            "model_key",
            name="uq_analytics_rollup_group",
        ),
    )
    with op.batch_alter_table("analytics_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_rollups_day", ["day"], unique=False)
    op.create_table(
        "analytics_rollup_watermarks",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rolled_through", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rolled_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "analytics_reconciliation_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", _string(16), nullable=False),
        sa.Column("metered_millicredits", sa.BigInteger(), nullable=False),
        sa.Column("ledger_millicredits", sa.BigInteger(), nullable=False),
        sa.Column("metered_units", sa.Integer(), nullable=False),
        sa.Column("provider_units", sa.Integer(), nullable=False),
        sa.Column("invoice_credits", sa.Integer(), nullable=False),
        sa.Column("ledger_paid_credits", sa.Integer(), nullable=False),
        sa.Column("difference_millicredits", sa.BigInteger(), nullable=False),
        sa.Column("issues", sa.JSON(), nullable=False),
        sa.Column("waiting", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "day", name="uq_reconciliation_org_day"),
    )
    with op.batch_alter_table("analytics_reconciliation_days", schema=None) as batch_op:
        batch_op.create_index("ix_reconciliation_day", ["day"], unique=False)
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.create_index("ix_usage_occurred", ["occurred_at"], unique=False)
    with op.batch_alter_table("usage_daily_rollups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_daily_rollups_day"))
        batch_op.drop_index(batch_op.f("ix_usage_daily_rollups_org_id"))
    op.drop_table("usage_daily_rollups")


def downgrade() -> None:
    op.create_table(
        "usage_daily_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("model_key", _string(64), nullable=False),
        sa.Column("source", _string(16), nullable=False, server_default="studio"),
        sa.Column("modality", _string(8), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("millicredits", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "org_id",
            "day",
            "project_id",
            "user_id",
            "model_key",
            "source",
            name="uq_usage_rollup_source",
        ),
    )
    with op.batch_alter_table("usage_daily_rollups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_daily_rollups_day"), ["day"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_usage_daily_rollups_org_id"), ["org_id"], unique=False
        )
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_occurred")
    with op.batch_alter_table("analytics_reconciliation_days", schema=None) as batch_op:
        batch_op.drop_index("ix_reconciliation_day")
    op.drop_table("analytics_reconciliation_days")
    op.drop_table("analytics_rollup_watermarks")
    with op.batch_alter_table("analytics_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_rollups_day")
    op.drop_table("analytics_rollups")
