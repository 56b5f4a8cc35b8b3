"""server-side page sessions (logout revokes, absolute lifetime)

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

from ates.platform.sessions import create_session_table, drop_session_table

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_session_table(op)


def downgrade() -> None:
    drop_session_table(op)
