"""dead letters: why (kind), retries at start, the latest outcome

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

from ates.platform.tables import add_dead_letter_retry_columns

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_dead_letter_retry_columns(op)


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        for column in ("outcome", "retries", "kind"):
            batch.drop_column(column)
