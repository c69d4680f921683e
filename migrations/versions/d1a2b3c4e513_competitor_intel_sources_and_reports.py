"""competitor intel sources and reports

Revision ID: d1a2b3c4e513
Revises: d1a2b3c4e512
Create Date: 2026-11-26 05:30:00.000000
"""

from collections.abc import Sequence

revision: str = "d1a2b3c4e513"
down_revision: str | None = "d1a2b3c4e512"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
