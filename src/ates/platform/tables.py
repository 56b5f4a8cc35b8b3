"""The tables every service database carries: outbox, inbox, dead letters, positions.

They are SQLAlchemy Core tables on one ``MetaData``, as the code uses them now. The
migrations do not read them: each service's chain creates and alters them through
``ates.platform.table_revisions``, and a test keeps the two in step.
"""

from __future__ import annotations

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
    # platform revision 3: why a letter was dead-lettered (invalid, rejected, failed: only
    # a failure is retried at start), how often it was retried automatically, and what
    # the latest replay or retry did
    sa.Column("kind", sa.String(16), nullable=True),
    sa.Column("retries", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("outcome", sa.Text(), nullable=True),
    sa.Index("ix_dead_letters_status", "status"),
)

# Where a consumer group stands in a log the broker does not track for us (RabbitMQ
# streams), and which generation of a read model's consumer is current
# (ates.platform.rebuild; the stored names "live" and "rebuild" are values of `stream`).
consumer_positions = sa.Table(
    "consumer_positions",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("stream", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("generation", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
