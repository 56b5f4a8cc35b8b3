"""The platform tables' DDL, one pair of functions per platform revision.

Every service database carries the platform tables (``ates.platform.tables``: outbox,
inbox, dead letters, consumer positions; ``ates.platform.sessions``: page sessions). Their
history is written here, each revision's DDL spelled out column by column as it was when
that revision shipped, and each service's Alembic chain has one revision per platform
revision that calls its pair. So a database of any age reaches the same platform tables,
and what a shipped revision creates never changes.

Frozen: a shipped function is never edited, and nothing here imports the live tables or
their types. A change to the platform tables is a new pair below, a new revision in every
service calling it, and the change in ``tables.py``; the database contract
(``tests/integration/database_contract/schema.py``) fails while a fresh upgrade of any
service differs from the live tables.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

TIME = sa.DateTime(timezone=True)


# --- platform revision 1, the first release: each service's 0001 --------------------


def create_tables(op: Any) -> None:
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("event_name", sa.String(128), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("published_at", TIME, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("event_name", sa.String(128), nullable=False),
        sa.Column("processed_at", TIME, nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("event_name", sa.String(128), nullable=True),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("resolved_at", TIME, nullable=True),
    )
    op.create_index("ix_dead_letters_status", "dead_letters", ["status"])
    op.create_table(
        "consumer_positions",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("stream", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("generation", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("updated_at", TIME, nullable=False),
    )


def drop_tables(op: Any) -> None:
    for table in ("consumer_positions", "dead_letters", "inbox", "outbox"):
        op.drop_table(table)  # its indexes go with it


# --- platform revision 2: each service's 0002_page_sessions ----------------------------


def create_page_sessions(op: Any) -> None:
    op.create_table(
        "page_sessions",
        sa.Column("id_digest", sa.String(64), primary_key=True),
        sa.Column("person_public_id", sa.String(36), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
    )
    op.create_index("ix_page_sessions_expires_at", "page_sessions", ["expires_at"])
    op.create_index("ix_page_sessions_person", "page_sessions", ["person_public_id"])


def drop_page_sessions(op: Any) -> None:
    op.drop_table("page_sessions")


# --- platform revision 3: each service's *_dead_letter_retries -------------------------


def add_dead_letter_retries(op: Any) -> None:
    """Why a letter was dead-lettered (invalid, rejected, failed: only a failure is retried
    at start), how often it was retried automatically, what the latest replay or retry did.

    Only the columns missing are added: a database whose 0001 ran before revision 1 was
    frozen (main up to 4b2f726 created the platform tables as they were at the time) may
    have them already. Letters not yet classified are, by the prefix the consumer gives
    every reason."""
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("dead_letters")}
    columns: list[sa.Column[Any]] = [
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("retries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("outcome", sa.Text(), nullable=True),
    ]
    missing = [column for column in columns if column.name not in present]
    if missing:
        with op.batch_alter_table("dead_letters") as batch:
            for column in missing:
                batch.add_column(column)
    op.execute(
        "UPDATE dead_letters SET kind = CASE"
        " WHEN error LIKE 'invalid:%' THEN 'invalid'"
        " WHEN error LIKE 'rejected:%' THEN 'rejected'"
        " ELSE 'failed' END"
        " WHERE kind IS NULL"
    )


def drop_dead_letter_retries(op: Any) -> None:
    with op.batch_alter_table("dead_letters") as batch:
        for column in ("outcome", "retries", "kind"):
            batch.drop_column(column)
