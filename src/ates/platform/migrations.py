"""Alembic per service, run programmatically on the service's async engine.

Each service keeps its revisions in ``ates/services/<name>/migrations`` with a two-line
``env.py`` that calls :func:`run_env`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, func, select

from ates.platform.db import Database, lock_key
from ates.platform.events.ordering import stamp, stamp_time
from ates.platform.sqltypes import UtcDateTime


def alembic_config(service: str) -> Config:
    config = Config()
    location = resources.files(f"ates.services.{service}") / "migrations"
    config.set_main_option("script_location", str(location))
    config.set_main_option("version_table", "alembic_version")
    return config


async def upgrade(service: str, db: Database, revision: str = "head") -> None:
    config = alembic_config(service)

    def _run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two processes starting at once (``ates serve`` migrates by default) must not
            # run the same DDL side by side: the second waits, then finds nothing to do.
            await connection.execute(
                select(func.pg_advisory_xact_lock(lock_key(f"migrate:{service}")))
            )
        await connection.run_sync(_run)


async def downgrade(service: str, db: Database, revision: str) -> None:
    """Back to ``revision`` (operators' rollbacks and the migrations' own tests)."""
    config = alembic_config(service)

    def _run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with db.engine.begin() as connection:
        await connection.run_sync(_run)


async def current(service: str, db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        return await connection.run_sync(_read)


def run_env(target_metadata: Any = None) -> None:
    """The body of every service's ``migrations/env.py``."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through 'ates migrate', not the alembic command")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


# --- revisions' helpers: each is part of revisions already shipped; change one only by
# writing a new function for a new revision.


def times_to_stamps(op: Any, table: str, facts: Sequence[str]) -> None:
    """Replace each ``<fact>_at`` time of a copy of people by a ``<fact>_stamp``
    (``ates.platform.events.ordering``). The event ids were never stored: an old time
    becomes a stamp with an empty tiebreak, which an event of the same instant still
    replaces (as the former rule let the later arrival win). No time: ``NEVER``."""
    for fact in facts:
        op.add_column(
            table, sa.Column(f"{fact}_stamp", sa.String(80), nullable=False, server_default="")
        )
    rows = sa.table(
        table,
        sa.column("id", sa.Integer()),
        *(sa.column(f"{fact}_at", UtcDateTime()) for fact in facts),
        *(sa.column(f"{fact}_stamp", sa.String()) for fact in facts),
    )
    _rewrite(
        op,
        rows,
        {f"{fact}_stamp": (f"{fact}_at", lambda at: stamp(at, "") if at else "") for fact in facts},
    )
    for fact in facts:
        op.drop_column(table, f"{fact}_at")  # plain ALTER: no table rebuild (SQLite 3.35+)


def stamps_to_times(op: Any, table: str, facts: Sequence[str]) -> None:
    """The downgrade of ``times_to_stamps``: each stamp's instant back into ``<fact>_at``."""
    for fact in facts:
        op.add_column(table, sa.Column(f"{fact}_at", sa.DateTime(timezone=True), nullable=True))
    rows = sa.table(
        table,
        sa.column("id", sa.Integer()),
        *(sa.column(f"{fact}_at", UtcDateTime()) for fact in facts),
        *(sa.column(f"{fact}_stamp", sa.String()) for fact in facts),
    )
    _rewrite(op, rows, {f"{fact}_at": (f"{fact}_stamp", stamp_time) for fact in facts})
    for fact in facts:
        op.drop_column(table, f"{fact}_stamp")


def _rewrite(
    op: Any, rows: sa.TableClause, derive: dict[str, tuple[str, Callable[[Any], Any]]]
) -> None:
    """Set each target column of every row from its source column (copies of people are
    as many rows as the staff: read them all, write them in one executemany)."""
    bind = op.get_bind()
    sources = [rows.c[source] for source, _ in derive.values()]
    found = bind.execute(sa.select(rows.c.id, *sources)).all()
    if not found:
        return
    values = [
        {"row_id": row.id}
        | {
            f"new_{target}": convert(row._mapping[source])
            for target, (source, convert) in derive.items()
        }
        for row in found
    ]
    statement = (
        sa.update(rows)
        .where(rows.c.id == sa.bindparam("row_id"))
        .values({target: sa.bindparam(f"new_{target}") for target in derive})
    )
    bind.execute(statement, values)
