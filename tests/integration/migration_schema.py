"""A database's schema as plain data, column for column, to compare two migration chains.

``migration_schema_before_15.json`` holds what every service's migrations produced before
the platform tables got migrations of their own (#15 item 8): the schema at the head in
full and a fingerprint of the schema at each revision, recorded on SQLite and PostgreSQL
from main at 4b2f726 by :func:`record`. It is a record of the past: never regenerate it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from ates.platform import migrations
from ates.platform.db import Database

SNAPSHOT = Path(__file__).with_name("migration_schema_before_15.json")


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _sorted(items: list[Any]) -> list[Any]:
    return sorted(_plain(items), key=json.dumps)


def schema_of(connection: sa.Connection) -> dict[str, Any]:
    """Every table but Alembic's own: its columns in order (name, type, nullable, server
    default), primary key, indexes, unique constraints, foreign keys and checks."""
    inspector = sa.inspect(connection)
    found: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if table == "alembic_version":
            continue
        found[table] = _plain(
            {
                "columns": [
                    [c["name"], repr(c["type"]), c["nullable"], c.get("default")]
                    for c in inspector.get_columns(table)
                ],
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "indexes": _sorted(
                    [
                        [i["name"], i["column_names"], bool(i["unique"]), i.get("dialect_options")]
                        for i in inspector.get_indexes(table)
                    ]
                ),
                "unique": _sorted(
                    [
                        [u["name"], u["column_names"]]
                        for u in inspector.get_unique_constraints(table)
                    ]
                ),
                "foreign_keys": _sorted(
                    [
                        [f["constrained_columns"], f["referred_table"], f["referred_columns"]]
                        for f in inspector.get_foreign_keys(table)
                    ]
                ),
                "checks": _sorted(
                    [[c["name"], c["sqltext"]] for c in inspector.get_check_constraints(table)]
                ),
            }
        )
    return found


async def schema(db: Database) -> dict[str, Any]:
    async with db.engine.connect() as connection:
        return await connection.run_sync(schema_of)


def revisions(service: str) -> list[str]:
    """The service's revisions, oldest first."""
    script = ScriptDirectory.from_config(migrations.alembic_config(service))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def fingerprint(found: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(found, sort_keys=True).encode()).hexdigest()


async def record(db_for: Any, services: list[str]) -> dict[str, Any]:
    """``{service: {"revisions": {revision: fingerprint}, "head": schema}}``: each service's
    chain run one revision at a time on a fresh database from ``db_for()``."""
    found: dict[str, Any] = {}
    for service in services:
        db: Database = await db_for()
        try:
            found[service] = {"revisions": {}}
            for revision in revisions(service):
                await migrations.upgrade(service, db, revision)
                found[service]["head"] = await schema(db)
                found[service]["revisions"][revision] = fingerprint(found[service]["head"])
        finally:
            await db.dispose()
    return found
