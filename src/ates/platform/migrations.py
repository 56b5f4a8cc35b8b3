"""Alembic per service, run programmatically on the service's async engine.

Each service keeps its revisions in ``ates/services/<name>/migrations`` with a two-line
``env.py`` that calls :func:`run_env`.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, func, select

from ates.platform.db import Database, lock_key


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
