"""acts once: form tokens and old organization addresses

Revision ID: d1a2b3c4e518
Revises: d1a2b3c4e516
Create Date: 2026-11-26 05:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "d1a2b3c4e518"
down_revision: str | None = "d1a2b3c4e516"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "form_submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("result", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("purpose", "token", name="uq_form_submissions_token"),
    )
    op.create_table(
        "org_old_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("org_old_addresses", schema=None) as batch_op:
        batch_op.create_index("ix_org_old_addresses_org_id", ["org_id"], unique=False)
        batch_op.create_index("ix_org_old_addresses_slug", ["slug"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("org_old_addresses", schema=None) as batch_op:
        batch_op.drop_index("ix_org_old_addresses_slug")
        batch_op.drop_index("ix_org_old_addresses_org_id")
    op.drop_table("org_old_addresses")
    op.drop_table("form_submissions")
