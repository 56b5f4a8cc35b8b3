"""server-side page sessions (logout revokes, absolute lifetime)

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

from ates.platform import table_revisions

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table_revisions.create_page_sessions(op)


def downgrade() -> None:
    table_revisions.drop_page_sessions(op)
