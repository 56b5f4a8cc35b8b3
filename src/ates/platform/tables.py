"""The tables every service database carries: outbox, inbox, dead letters, positions.

They are SQLAlchemy Core tables on one ``MetaData``; each service's first migration
creates them with :func:`create_platform_tables`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ates.platform.sqltypes import UtcDateTime

metadata = sa.MetaData()


outbox = sa.Table(
    "outbox",
    metadata,
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
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("published_at", UtcDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Index(
        "ix_outbox_unpublished",
        "id",
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    ),
)

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("event_name", sa.String(128), nullable=False),
    sa.Column("processed_at", UtcDateTime(), nullable=False),
)


# Added to dead_letters after the first release (each service's migration
# ``add_dead_letter_retry_columns``): why a letter was dead-lettered (invalid, rejected,
# failed: only a failure is retried at start), how often it was retried automatically,
# and what the latest replay or retry did.
def dead_letter_retry_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("retries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("outcome", sa.Text(), nullable=True),
    ]


dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("consumer", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=True),
    sa.Column("event_name", sa.String(128), nullable=True),
    sa.Column("subject", sa.String(256), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("resolved_at", UtcDateTime(), nullable=True),
    *dead_letter_retry_columns(),
    sa.Index("ix_dead_letters_status", "status"),
)

# Where a consumer group stands in a log the broker does not track for us (RabbitMQ
# streams), and which generation of a replayable consumer is current.
consumer_positions = sa.Table(
    "consumer_positions",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("stream", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("generation", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)


def create_platform_tables(op: Any) -> None:
    """Call from a service's first Alembic migration: ``create_platform_tables(op)``."""
    bind = op.get_bind()
    metadata.create_all(bind)


def add_dead_letter_retry_columns(op: Any) -> None:
    """The columns of :func:`dead_letter_retry_columns`, for a database whose first
    migration created ``dead_letters`` without them (a database created since has them:
    the first migration creates the platform tables as they are now). Letters not yet
    classified are, by the prefix the consumer gives every reason."""
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("dead_letters")}
    missing = [c for c in dead_letter_retry_columns() if c.name not in present]
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
