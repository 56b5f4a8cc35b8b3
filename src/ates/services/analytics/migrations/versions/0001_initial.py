"""the platform tables

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

from alembic import op

from ates.platform.tables import create_platform_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_platform_tables(op)


def downgrade() -> None:
    pass
