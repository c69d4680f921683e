"""marketing assistant conversations

Revision ID: d1a2b3c4e512
Revises: d1a2b3c4e511
Create Date: 2026-11-26 05:30:00.000000

Conversations get a table of their own; assistant messages get a reply status, heartbeat, stop
flag, tokens, the cap unit they took and the brand kit they used; generations record their
brand kit. The search index (FTS5 on SQLite, GIN over tsvector on PostgreSQL) is created by
`models.assistant.assistant_search_ensure`, the same function the test databases use.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from models.assistant import assistant_search_drop, assistant_search_ensure

revision: str = "d1a2b3c4e512"
down_revision: str | None = "d1a2b3c4e511"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assistant_conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("model_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("brand_kit_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["brand_kit_id"], ["brand_kits.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    with op.batch_alter_table("assistant_conversations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assistant_conversations_org_updated", ["org_id", "updated_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_assistant_conversations_project_id"), ["project_id"], unique=False
        )
    with op.batch_alter_table("assistant_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "status",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="done",
            )
        )
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("stop_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("tokens", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("failure_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )
        batch_op.add_column(
            sa.Column("cap_key", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True)
        )
        batch_op.add_column(sa.Column("brand_kit_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "brand_kit_label",
                sqlmodel.sql.sqltypes.AutoString(length=200),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(
            sa.Column("flagged_terms", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_assistant_messages_brand_kit_id",
            "brand_kits",
            ["brand_kit_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            "ix_assistant_messages_status_heartbeat", ["status", "heartbeat_at"], unique=False
        )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("brand_kit_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "brand_kit_label", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True
            )
        )
        batch_op.create_foreign_key(
            "fk_generations_brand_kit_id",
            "brand_kits",
            ["brand_kit_id"],
            ["id"],
            ondelete="SET NULL",
        )
    assistant_search_ensure(op.get_bind())


def downgrade() -> None:
    assistant_search_drop(op.get_bind())
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_constraint("fk_generations_brand_kit_id", type_="foreignkey")
        batch_op.drop_column("brand_kit_label")
        batch_op.drop_column("brand_kit_id")
    with op.batch_alter_table("assistant_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_assistant_messages_status_heartbeat")
        batch_op.drop_constraint("fk_assistant_messages_brand_kit_id", type_="foreignkey")
        for column in (
            "updated_at",
            "flagged_terms",
            "brand_kit_label",
            "brand_kit_id",
            "cap_key",
            "failure_reason",
            "tokens",
            "stop_requested",
            "heartbeat_at",
            "status",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("assistant_conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assistant_conversations_project_id"))
        batch_op.drop_index("ix_assistant_conversations_org_updated")
    op.drop_table("assistant_conversations")
