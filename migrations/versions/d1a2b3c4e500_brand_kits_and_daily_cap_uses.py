"""brand kits and daily cap uses

Revision ID: d1a2b3c4e500
Revises: 5e1f0c7a2b93
Create Date: 2026-11-26 05:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "d1a2b3c4e500"
down_revision: str | None = "5e1f0c7a2b93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _list_column(name: str) -> sa.Column:
    return sa.Column(name, sa.JSON(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "brand_kits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        _list_column("voice"),
        sa.Column("audience", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        _list_column("dos"),
        _list_column("donts"),
        _list_column("preferred_terms"),
        _list_column("avoided_terms"),
        _list_column("product_facts"),
        _list_column("example_phrases"),
        sa.Column("updated_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["updated_by_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "scope", name="uq_brand_kit_scope"),
    )
    op.create_index(op.f("ix_brand_kits_org_id"), "brand_kits", ["org_id"], unique=False)
    op.create_table(
        "daily_cap_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("counter", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index(
        "ix_daily_cap_uses_org_day", "daily_cap_uses", ["org_id", "counter", "day"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_daily_cap_uses_org_day", table_name="daily_cap_uses")
    op.drop_table("daily_cap_uses")
    op.drop_index(op.f("ix_brand_kits_org_id"), table_name="brand_kits")
    op.drop_table("brand_kits")
