"""operator console: approvals, audit chain, view-as

Revision ID: d1a2b3c4e516
Revises: d1a2b3c4e515
Create Date: 2026-11-26 05:30:00.000000

Audit entries written before this revision keep NULL chain columns: verification reports them
as "before chaining began" and checks the chain from the first chained entry on.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "d1a2b3c4e516"
down_revision: str | None = "d1a2b3c4e515"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_seq", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("entry_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.create_index("ix_audit_chain", ["org_id", "chain_seq"], unique=False)

    op.create_table(
        "adjustment_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("amount_millicredits", sa.BigInteger(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("requested_by_user_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("ledger_entry_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["requested_by_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["decided_by_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
    )
    with op.batch_alter_table("adjustment_approvals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_adjustment_approvals_org_id"), ["org_id"], unique=False
        )
        batch_op.create_index(
            "ix_adjustment_approvals_status_created", ["status", "created_at"], unique=False
        )

    op.create_table(
        "view_as_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operator_user_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["operator_user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("view_as_grants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_view_as_operator_org", ["operator_user_id", "org_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("view_as_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_view_as_operator_org")
    op.drop_table("view_as_grants")
    with op.batch_alter_table("adjustment_approvals", schema=None) as batch_op:
        batch_op.drop_index("ix_adjustment_approvals_status_created")
        batch_op.drop_index(batch_op.f("ix_adjustment_approvals_org_id"))
    op.drop_table("adjustment_approvals")
    with op.batch_alter_table("audit_log_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_chain")
        batch_op.drop_column("entry_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("chain_seq")
