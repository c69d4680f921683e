"""help center, status, support and notifications

Revision ID: d1a2b3c4e515
Revises: d1a2b3c4e514
Create Date: 2026-11-26 05:30:00.000000

The help center's full-text index (SQLite FTS5) is created by `services/help_center.py` when
it loads the articles; PostgreSQL searches a `tsvector` computed in the query.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "d1a2b3c4e515"
down_revision: str | None = "d1a2b3c4e514"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int):
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _at():
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "help_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", _s(120), nullable=False),
        sa.Column("title", _s(200), nullable=False),
        sa.Column("kind", _s(16), nullable=False),
        sa.Column("summary", _s(500), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("error_codes", sa.JSON(), nullable=False),
        sa.Column("widget", _s(32), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated", _s(10), nullable=False),
        sa.Column("content_hash", _s(64), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("loaded_at", _at(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_help_articles_slug"), "help_articles", ["slug"], unique=True)
    op.create_table(
        "help_search_misses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_key", _s(200), nullable=False),
        sa.Column("query", _s(200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", _at(), nullable=False),
        sa.Column("last_at", _at(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("query_key"),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", _s(200), nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("impact", _s(16), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("org_ids", sa.JSON(), nullable=False),
        sa.Column("auto_key", _s(120), nullable=True),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _at(), nullable=False),
        sa.Column("updated_at", _at(), nullable=False),
        sa.Column("resolved_at", _at(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("auto_key"),
    )
    op.create_index(
        "ix_incidents_status_created", "incidents", ["status", "created_at"], unique=False
    )
    op.create_table(
        "incident_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("body", _s(2000), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _at(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_incident_updates_incident_id"), "incident_updates", ["incident_id"], unique=False
    )
    op.create_table(
        "notification_preferences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", _s(32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _at(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "kind", name="uq_notification_pref_user_kind"),
    )
    op.create_table(
        "low_balance_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("last_sent_at", _at(), nullable=True),
        sa.Column("last_balance_millicredits", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _at(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id"),
    )
    op.create_table(
        "support_ticket_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("kind", _s(16), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("mailed", sa.Boolean(), nullable=False),
        sa.Column("created_at", _at(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["support_tickets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_support_ticket_messages_ticket_id"),
        "support_ticket_messages",
        ["ticket_id"],
        unique=False,
    )
    with op.batch_alter_table("support_tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("generation_public_id", _s(40), nullable=True))
        batch_op.add_column(sa.Column("model_key", _s(64), nullable=True))
        batch_op.add_column(sa.Column("priority", _s(16), nullable=False, server_default="normal"))
        batch_op.add_column(sa.Column("due_at", _at(), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", _s(80), nullable=True))
        batch_op.create_unique_constraint("uq_support_ticket_idempotency", ["idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("support_tickets", schema=None) as batch_op:
        batch_op.drop_constraint("uq_support_ticket_idempotency", type_="unique")
        batch_op.drop_column("idempotency_key")
        batch_op.drop_column("due_at")
        batch_op.drop_column("priority")
        batch_op.drop_column("model_key")
        batch_op.drop_column("generation_public_id")
    op.drop_index(
        op.f("ix_support_ticket_messages_ticket_id"), table_name="support_ticket_messages"
    )
    op.drop_table("support_ticket_messages")
    op.drop_table("low_balance_alerts")
    op.drop_table("notification_preferences")
    op.drop_index(op.f("ix_incident_updates_incident_id"), table_name="incident_updates")
    op.drop_table("incident_updates")
    op.drop_index("ix_incidents_status_created", table_name="incidents")
    op.drop_table("incidents")
    op.drop_table("help_search_misses")
    op.drop_index(op.f("ix_help_articles_slug"), table_name="help_articles")
    op.drop_table("help_articles")
    # The runtime full-text index, if the articles were loaded.
    op.execute("DROP TABLE IF EXISTS help_articles_fts")
