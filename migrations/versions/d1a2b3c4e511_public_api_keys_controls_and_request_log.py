"""public api keys, controls and request log

Revision ID: d1a2b3c4e511
Revises: d1a2b3c4e500
Create Date: 2026-11-26 05:30:00.000000

API keys gain a project, an expiry, a daily credit cap and a rate limit; request logs gain the
run, the credits charged and whether the answer streamed; organizations get API controls; API
creates remember their Idempotency-Key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "d1a2b3c4e511"
down_revision: str | None = "d1a2b3c4e500"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("project_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("daily_cap_credits", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("revoked_by_user_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_api_keys_project_id_projects",
            "projects",
            ["project_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            "fk_api_keys_revoked_by_user_id_users",
            "users",
            ["revoked_by_user_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("request_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("generation_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("millicredits", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("stream", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_foreign_key(
            "fk_request_logs_generation_id_generations",
            "generations",
            ["generation_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_request_logs_created", ["created_at"], unique=False)
    op.create_table(
        "api_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("api_enabled", sa.Boolean(), nullable=False),
        sa.Column("allowed_model_keys", sa.JSON(), nullable=False),
        sa.Column("updated_by_user_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["updated_by_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id"),
    )
    op.create_table(
        "api_idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("route", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["generation_id"], ["generations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_id", "key", name="uq_api_idempotency_key"),
    )


def downgrade() -> None:
    op.drop_table("api_idempotency_keys")
    op.drop_table("api_settings")
    with op.batch_alter_table("request_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_request_logs_created")
        batch_op.drop_constraint("fk_request_logs_generation_id_generations", type_="foreignkey")
        batch_op.drop_column("stream")
        batch_op.drop_column("millicredits")
        batch_op.drop_column("generation_id")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint("fk_api_keys_revoked_by_user_id_users", type_="foreignkey")
        batch_op.drop_constraint("fk_api_keys_project_id_projects", type_="foreignkey")
        batch_op.drop_column("revoked_by_user_id")
        batch_op.drop_column("rate_limit_per_minute")
        batch_op.drop_column("daily_cap_credits")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("project_id")
