"""runs on a task queue: worker lease on generations; usage outcome, request id and source

Revision ID: 5e1f0c7a2b93
Revises: b3e8f1c2d4a7
Create Date: 2026-11-26 03:00:00.000000

Existing usage events were all successful runs; the roll-up keeps its rows as ``studio``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "5e1f0c7a2b93"
down_revision: str | None = "b3e8f1c2d4a7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True)
        )
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_generations_status_lease", ["status", "lease_expires_at"], unique=False
        )
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "outcome",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="succeeded",
            )
        )
        batch_op.add_column(
            sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    with op.batch_alter_table("usage_daily_rollups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "source",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="studio",
            )
        )
        batch_op.drop_constraint("uq_usage_rollup", type_="unique")
        batch_op.create_unique_constraint(
            "uq_usage_rollup_source",
            ["org_id", "day", "project_id", "user_id", "model_key", "source"],
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_daily_rollups", schema=None) as batch_op:
        batch_op.drop_constraint("uq_usage_rollup_source", type_="unique")
        batch_op.create_unique_constraint(
            "uq_usage_rollup", ["org_id", "day", "project_id", "user_id", "model_key"]
        )
        batch_op.drop_column("source")
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_column("request_id")
        batch_op.drop_column("outcome")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("ix_generations_status_lease")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("worker_id")
        batch_op.drop_column("enqueued_at")
