"""notices: claims with a lease, attempts, next try and last error (claim, send, mark)

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing notices are unclaimed and untried: the sender takes them as before.
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_error", sa.String(500), nullable=True))


def downgrade() -> None:
    # A notice claimed but not yet marked simply becomes unsent again (sent once more).
    # plain ALTERs (SQLite 3.35+): no rebuild of a table that may be long
    for column in ("last_error", "next_try_at", "attempts", "claimed_by", "claimed_at"):
        op.drop_column("notices", column)
