"""webhook events record their outcome

Revision ID: 7d2e5c1a9b40
Revises: 4c58736a22c6
Create Date: 2026-11-28 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "7d2e5c1a9b40"
down_revision: str | None = "4c58736a22c6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Events recorded before this column existed were applied or ignored without a reason.
    with op.batch_alter_table("processed_webhook_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "outcome",
                sqlmodel.sql.sqltypes.AutoString(length=500),
                nullable=False,
                server_default="",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("processed_webhook_events", schema=None) as batch_op:
        batch_op.drop_column("outcome")
