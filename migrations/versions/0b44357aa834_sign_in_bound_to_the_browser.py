"""sign-in bound to the browser that started it; failed sign-ins of unknown addresses

Revision ID: 0b44357aa834
Revises: 7d2e5c1a9b40
Create Date: 2026-11-28 12:00:00.000000

Pending sign-ins and Google sign-in flows started before this revision have no browser
binding; they can no longer be completed through the browser (they expire within 10
minutes anyway), so people simply sign in again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0b44357aa834"
down_revision: str | None = "7d2e5c1a9b40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("failed_sign_in_count", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email_hash"),
    )
    with op.batch_alter_table("sign_in_throttles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sign_in_throttles_last_failed_at"), ["last_failed_at"], unique=False
        )
    with op.batch_alter_table("oauth_flow_states", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "browser_binding_hash",
                sqlmodel.sql.sqltypes.AutoString(length=128),
                nullable=True,
            )
        )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "browser_binding_hash",
                sqlmodel.sql.sqltypes.AutoString(length=128),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_column("browser_binding_hash")
    with op.batch_alter_table("oauth_flow_states", schema=None) as batch_op:
        batch_op.drop_column("browser_binding_hash")
    with op.batch_alter_table("sign_in_throttles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_throttles_last_failed_at"))
    op.drop_table("sign_in_throttles")
