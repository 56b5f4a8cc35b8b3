"""the projections of analytics and the platform tables

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ates.platform import table_revisions

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMP = sa.String(80)


def upgrade() -> None:
    table_revisions.create_tables(op)
    op.create_table(
        "people",
        sa.Column("public_id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("full_name", sa.String(200), nullable=True),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("profile_stamp", STAMP, nullable=False),
        sa.Column("role_stamp", STAMP, nullable=False),
        sa.Column("active_stamp", STAMP, nullable=False),
    )
    op.create_table(
        "balances",
        sa.Column("owner_public_id", sa.String(36), primary_key=True),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("stamp", STAMP, nullable=False),
    )
    op.create_index("ix_balances_balance_cents", "balances", ["balance_cents"])
    op.create_table(
        "tasks",
        sa.Column("public_id", sa.String(36), primary_key=True),
        sa.Column("title", sa.String(300), nullable=True),
        sa.Column("jira_id", sa.String(64), nullable=True),
        sa.Column("assign_fee_cents", sa.BigInteger(), nullable=True),
        sa.Column("reward_cents", sa.BigInteger(), nullable=True),
        sa.Column("assignments", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("assignee_public_id", sa.String(36), nullable=True),
        sa.Column("assignee_stamp", STAMP, nullable=False, server_default=""),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(36), nullable=True),
    )
    op.create_table(
        "earnings_by_day",
        sa.Column("business_date", sa.Date(), primary_key=True),
        sa.Column("fees_cents", sa.BigInteger(), nullable=False),
        sa.Column("rewards_cents", sa.BigInteger(), nullable=False),
        sa.Column("payouts_cents", sa.BigInteger(), nullable=False),
        sa.Column("fee_count", sa.Integer(), nullable=False),
        sa.Column("reward_count", sa.Integer(), nullable=False),
    )
    op.create_table(
        "top_completions",
        sa.Column("bucket", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("task_public_id", sa.String(36), nullable=False),
        sa.Column("reward_cents", sa.BigInteger(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "closed_days",
        sa.Column("business_date", sa.Date(), primary_key=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "closed_days",
        "top_completions",
        "earnings_by_day",
        "tasks",
        "balances",
        "people",
    ):
        op.drop_table(table)
    table_revisions.drop_tables(op)
