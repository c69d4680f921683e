"""organization sso, verified domains and required 2fa

Revision ID: d1a2b3c4e523
Revises: d1a2b3c4e518
Create Date: 2026-11-26 05:30:00.000000

Three new tables: `org_security` (SSO settings with the client secret encrypted, "require SSO",
"require 2FA"), `org_domains` (claimed email domains and their DNS TXT tokens; verified for at
most one organization) and `sso_identities` (issuer + subject of people signing in via an IdP).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "d1a2b3c4e523"
down_revision: str | None = "d1a2b3c4e518"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int):
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "org_security",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("require_2fa", sa.Boolean(), nullable=False),
        sa.Column("sso_issuer", _text(500), nullable=False),
        sa.Column("sso_client_id", _text(255), nullable=False),
        sa.Column("sso_client_secret_encrypted", _text(1024), nullable=False),
        sa.Column("sso_default_role", _text(16), nullable=False),
        sa.Column("sso_enabled", sa.Boolean(), nullable=False),
        sa.Column("require_sso", sa.Boolean(), nullable=False),
        sa.Column("sso_tested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sso_tested_email", _text(320), nullable=False),
        sa.Column("sso_last_test_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sso_last_test_error", _text(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id"),
    )
    op.create_table(
        "org_domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("domain", _text(253), nullable=False),
        sa.Column("verification_token", _text(128), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", _text(500), nullable=False),
        sa.Column("recheck_failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("unverified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "domain", name="uq_org_domains_org_domain"),
    )
    with op.batch_alter_table("org_domains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_domains_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "uq_org_domains_verified_domain",
            ["domain"],
            unique=True,
            sqlite_where=sa.text("verified_at IS NOT NULL"),
            postgresql_where=sa.text("verified_at IS NOT NULL"),
        )
    op.create_table(
        "sso_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("issuer", _text(500), nullable=False),
        sa.Column("subject", _text(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "issuer", "subject", name="uq_sso_identities_subject"),
    )
    with op.batch_alter_table("sso_identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_identities_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sso_identities_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sso_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_identities_user_id"))
        batch_op.drop_index(batch_op.f("ix_sso_identities_org_id"))
    op.drop_table("sso_identities")
    with op.batch_alter_table("org_domains", schema=None) as batch_op:
        batch_op.drop_index("uq_org_domains_verified_domain")
        batch_op.drop_index(batch_op.f("ix_org_domains_org_id"))
    op.drop_table("org_domains")
    op.drop_table("org_security")
