"""competitor intel sources and reports

Revision ID: d1a2b3c4e513
Revises: d1a2b3c4e512
Create Date: 2026-11-26 05:30:00.000000

Competitor reports become runs (status history, worker lease, credits held and settled, the
structured report and what changed since the last one); each report's sources get a table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "d1a2b3c4e513"
down_revision: str | None = "d1a2b3c4e512"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("competitor_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_id", _STR(length=40), nullable=True))
        batch_op.add_column(sa.Column("request_key", _STR(length=120), nullable=True))
        batch_op.add_column(
            sa.Column("competitor_key", _STR(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("focus", _STR(length=16), nullable=False, server_default="positioning")
        )
        batch_op.add_column(sa.Column("urls", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("pasted_material", _STR(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("brand_kit_label", _STR(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("model_key", _STR(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("status_history", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("stage", _STR(length=200), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("report", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("previous_report_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("failure_code", _STR(length=64), nullable=True))
        batch_op.add_column(sa.Column("failure_reason", _STR(length=1000), nullable=True))
        for name in ("estimate_millicredits", "held_millicredits", "charged_millicredits"):
            batch_op.add_column(
                sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            )
        batch_op.add_column(sa.Column("hold_entry_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("worker_id", _STR(length=120), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint("uq_competitor_reports_public_id", ["public_id"])
        batch_op.create_unique_constraint("uq_competitor_reports_request_key", ["request_key"])
        batch_op.create_foreign_key(
            "fk_competitor_reports_previous",
            "competitor_reports",
            ["previous_report_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            "ix_competitor_reports_org_competitor",
            ["org_id", "competitor_key", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_competitor_reports_status_lease", ["status", "lease_expires_at"], unique=False
        )
        batch_op.create_index(
            "ix_competitor_reports_status_started", ["status", "started_at"], unique=False
        )

    op.create_table(
        "competitor_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source_key", _STR(length=8), nullable=False),
        sa.Column("kind", _STR(length=8), nullable=False),
        sa.Column("url", _STR(length=2000), nullable=False),
        sa.Column("final_url", _STR(length=2000), nullable=False),
        sa.Column("outcome", _STR(length=16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content_hash", _STR(length=64), nullable=False),
        sa.Column("bytes_read", sa.Integer(), nullable=False),
        sa.Column("title", _STR(length=300), nullable=False),
        sa.Column("excerpt", _STR(length=600), nullable=False),
        sa.Column("text", _STR(), nullable=False),
        sa.Column("blocks", sa.JSON(), nullable=False),
        sa.Column("message", _STR(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["report_id"], ["competitor_reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "source_key", name="uq_competitor_source_key"),
    )
    with op.batch_alter_table("competitor_sources", schema=None) as batch_op:
        batch_op.create_index(
            "ix_competitor_sources_report", ["report_id", "position"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_competitor_sources_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("competitor_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_competitor_sources_org_id"))
        batch_op.drop_index("ix_competitor_sources_report")
    op.drop_table("competitor_sources")
    with op.batch_alter_table("competitor_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_competitor_reports_status_started")
        batch_op.drop_index("ix_competitor_reports_status_lease")
        batch_op.drop_index("ix_competitor_reports_org_competitor")
        batch_op.drop_constraint("fk_competitor_reports_previous", type_="foreignkey")
        batch_op.drop_constraint("uq_competitor_reports_request_key", type_="unique")
        batch_op.drop_constraint("uq_competitor_reports_public_id", type_="unique")
        for name in (
            "lease_expires_at",
            "worker_id",
            "enqueued_at",
            "finished_at",
            "started_at",
            "hold_entry_id",
            "charged_millicredits",
            "held_millicredits",
            "estimate_millicredits",
            "failure_reason",
            "failure_code",
            "previous_report_id",
            "changes",
            "report",
            "stage",
            "status_history",
            "model_key",
            "brand_kit_label",
            "pasted_material",
            "urls",
            "focus",
            "competitor_key",
            "request_key",
            "public_id",
        ):
            batch_op.drop_column(name)
