"""accounts and the platform tables

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ates.platform.tables import create_platform_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_platform_tables(op)
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(36), nullable=False, unique=True),
        sa.Column("owner_public_id", sa.String(36), nullable=False, unique=True),
        sa.Column("owner_name", sa.String(200), nullable=True),
        sa.Column("owner_email", sa.String(254), nullable=True),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("accounts")
