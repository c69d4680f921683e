"""brand kits and daily cap uses

Revision ID: d1a2b3c4e500
Revises: 5e1f0c7a2b93
Create Date: 2026-11-26 05:30:00.000000
"""

from collections.abc import Sequence

revision: str = "d1a2b3c4e500"
down_revision: str | None = "5e1f0c7a2b93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
