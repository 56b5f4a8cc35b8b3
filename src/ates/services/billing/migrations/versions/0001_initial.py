"""accounts, task prices, the ledger, closed days, and the platform tables

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

LEDGER_TABLES = ("transactions", "entries")


def upgrade() -> None:
    table_revisions.create_tables(op)
    accounts = op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(36), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("owner_public_id", sa.String(36), nullable=True, unique=True),
        sa.Column("owner_name", sa.String(200), nullable=True),
        sa.Column("owner_email", sa.String(254), nullable=True),
        sa.Column("owner_username", sa.String(150), nullable=True),
        sa.Column("owner_role", sa.String(32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("profile_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("role_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('person', 'company', 'cash')", name="ck_accounts_kind"),
        sa.CheckConstraint(
            "(kind = 'person') = (owner_public_id IS NOT NULL)", name="ck_accounts_owner"
        ),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(36), nullable=False, unique=True),
        sa.Column("assign_fee_cents", sa.Integer(), nullable=False),
        sa.Column("reward_cents", sa.Integer(), nullable=False),
        sa.Column("priced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("title", sa.String(300), nullable=True),
        sa.Column("jira_id", sa.String(64), nullable=True),
        sa.CheckConstraint("assign_fee_cents BETWEEN 1000 AND 2000", name="ck_tasks_fee"),
        sa.CheckConstraint("reward_cents BETWEEN 2000 AND 4000", name="ck_tasks_reward"),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(36), nullable=False, unique=True),
        sa.Column("idempotency_key", sa.String(100), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("owner_account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("task_public_id", sa.String(36), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("booked_late_from", sa.Date(), nullable=True),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_cents > 0", name="ck_transactions_amount"),
        sa.CheckConstraint(
            "kind IN ('assign_fee', 'reward', 'payout')", name="ck_transactions_kind"
        ),
    )
    op.create_index(
        "ix_transactions_owner_day", "transactions", ["owner_account_id", "business_date"]
    )
    op.create_index(
        "ux_transactions_one_reward_per_task",
        "transactions",
        ["task_public_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'reward'"),
        postgresql_where=sa.text("kind = 'reward'"),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("transaction_id", sa.Integer(), sa.ForeignKey("transactions.id"), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.CheckConstraint("amount_cents <> 0", name="ck_entries_amount"),
    )
    op.create_index("ix_entries_account_day", "entries", ["account_id", "business_date"])
    op.create_index("ix_entries_transaction", "entries", ["transaction_id"])
    op.create_table(
        "closed_days",
        sa.Column("business_date", sa.Date(), primary_key=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payouts", sa.Integer(), nullable=False),
        sa.Column("paid_cents", sa.BigInteger(), nullable=False),
    )
    books = op.create_table(
        "books",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("closed_through", sa.Date(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
    )
    system = {"active": True, "balance_cents": 0, "owner_public_id": None}
    op.bulk_insert(
        accounts,
        [
            {"id": 1, "public_id": "00000000-0000-4000-8000-000000000001", "kind": "company"}
            | system
            | {"owner_name": "Company (management earnings)"},
            {"id": 2, "public_id": "00000000-0000-4000-8000-000000000002", "kind": "cash"}
            | system
            | {"owner_name": "Cash (paid out to people)"},
        ],
    )
    op.bulk_insert(books, [{"id": 1, "closed_through": None, "timezone": "UTC"}])
    if op.get_bind().dialect.name == "postgresql":
        # the system accounts took ids 1 and 2 by hand; people's accounts come after them
        op.execute("SELECT setval(pg_get_serial_sequence('accounts', 'id'), 2)")
    _make_ledger_append_only()


def _make_ledger_append_only() -> None:
    """Entries and transactions are never changed or removed, even by hand-written SQL."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION billing_ledger_is_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'ledger rows are immutable (%)', TG_TABLE_NAME; END $$"
        )
        for table in LEDGER_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION billing_ledger_is_append_only()"
            )
        return
    for table in LEDGER_TABLES:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'ledger rows are immutable ({table})'); END"
            )


def downgrade() -> None:
    bind = op.get_bind()
    for table in LEDGER_TABLES:
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS billing_ledger_is_append_only()")
    for table in ("books", "closed_days", "entries", "transactions", "tasks", "accounts"):
        op.drop_table(table)
    table_revisions.drop_tables(op)
