"""dead letters: why (kind), retries at start, the latest outcome

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

from ates.platform import table_revisions

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table_revisions.add_dead_letter_retries(op)


def downgrade() -> None:
    table_revisions.drop_dead_letter_retries(op)
