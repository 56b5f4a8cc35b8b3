"""Every service's migrations, on SQLite and PostgreSQL: a fresh upgrade builds the platform
tables the code uses (``ates.platform.tables``), a database made by the chains as they were
before the platform tables had revisions of their own (#15 item 8) upgrades to the same
schema and keeps its rows, and a downgrade to base leaves no table behind."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ates.config import SERVICES
from ates.platform import migrations, sessions, tables
from ates.platform.db import Database
from ates.testing.servers import create_database, database_dsn, drop_database, sqlalchemy_url
from tests.integration.migration_schema import SNAPSHOT, fingerprint, revisions, schema

pytestmark = pytest.mark.integration

MakeDb = Callable[[], Awaitable[Database]]

# the revision of each service that calls table_revisions.add_dead_letter_retries
DEAD_LETTER_RETRIES = {
    "auth": "0003",
    "tasks": "0004",
    "billing": "0003",
    "analytics": "0003",
    "notifications": "0003",
}
PLATFORM_TABLES = {*tables.metadata.tables, *sessions.metadata.tables}
T = datetime(2026, 3, 3, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def make_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeDb]:
    """Fresh databases of one kind, each disposed of (and dropped) afterwards."""
    dsn = request.getfixturevalue("postgres_dsn") if request.param == "postgresql" else None
    made: list[Database] = []
    names: list[str] = []

    async def make() -> Database:
        if dsn is None:
            made.append(Database(f"sqlite+aiosqlite:///{tmp_path / uuid.uuid4().hex}.db"))
        else:
            names.append(await create_database(dsn))
            made.append(Database(sqlalchemy_url(database_dsn(dsn, names[-1]))))
        return made[-1]

    try:
        yield make
    finally:
        for db in made:
            await db.dispose()
        for name in names:
            await drop_database(str(dsn), name)


def dialect(db: Database) -> str:
    return db.engine.dialect.name


def test_the_recorded_schemas_cover_each_service_chain_up_to_its_head_of_then() -> None:
    recorded = json.loads(SNAPSHOT.read_text())
    for service in SERVICES:
        then = list(recorded["sqlite"][service]["revisions"])
        assert revisions(service)[: len(then)] == then


@pytest.mark.parametrize("service", SERVICES)
async def test_a_fresh_upgrade_builds_the_platform_tables_the_code_uses(
    service: str, make_db: MakeDb
) -> None:
    migrated, live = await make_db(), await make_db()
    await migrations.upgrade(service, migrated)
    async with live.engine.begin() as connection:
        await connection.run_sync(tables.metadata.create_all)
        await connection.run_sync(sessions.metadata.create_all)
    found = await schema(migrated)
    assert {name: found[name] for name in PLATFORM_TABLES} == await schema(live)


async def _rows(db: Database) -> dict[str, list[Any]]:
    async with db.engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in await connection.execute(sa.select(table).order_by(*table.primary_key))
            ]
            for table in (tables.outbox, tables.inbox, tables.dead_letters)
        }


@pytest.mark.parametrize("service", SERVICES)
async def test_a_database_of_every_earlier_revision_upgrades_to_the_same_schema_and_rows(
    service: str, make_db: MakeDb
) -> None:
    """Each database is rebuilt as the former chain left it at that revision (the former
    first revision created the platform tables as they are now, so with the dead-letter
    retry columns), checked against the recorded fingerprint, filled, then upgraded."""
    recorded = json.loads(SNAPSHOT.read_text())[dialect(await make_db())][service]
    fresh = await make_db()
    await migrations.upgrade(service, fresh)
    head = await schema(fresh)
    assert head == recorded["head"]
    chain = revisions(service)
    for revision, expected in recorded["revisions"].items():
        db = await make_db()
        await migrations.upgrade(service, db, revision)
        if chain.index(revision) < chain.index(DEAD_LETTER_RETRIES[service]):
            async with db.engine.begin() as connection:
                for column in ("kind VARCHAR(16)", "retries INTEGER DEFAULT '0' NOT NULL"):
                    await connection.execute(sa.text(f"ALTER TABLE dead_letters ADD {column}"))
                await connection.execute(sa.text("ALTER TABLE dead_letters ADD outcome TEXT"))
        assert fingerprint(await schema(db)) == expected, revision
        async with db.engine.begin() as connection:
            await connection.execute(
                sa.insert(tables.outbox).values(
                    event_id=str(uuid.uuid4()),
                    domain="accounts",
                    event_name="AccountCreated",
                    payload="{}",
                    created_at=T,
                )
            )
            await connection.execute(
                sa.insert(tables.inbox).values(
                    consumer=service, event_id=str(uuid.uuid4()), event_name="X", processed_at=T
                )
            )
            await connection.execute(
                sa.insert(tables.dead_letters).values(
                    consumer=service,
                    subject="accounts.AccountCreated",
                    payload="{}",
                    error="rejected: no",
                    attempts=1,
                    kind="rejected",
                    created_at=T,
                )
            )
        before = await _rows(db)
        await migrations.upgrade(service, db)
        assert await schema(db) == head, revision
        assert await _rows(db) == before, revision


@pytest.mark.parametrize("service", SERVICES)
async def test_down_to_base_leaves_no_table_and_up_again_gives_the_same_schema(
    service: str, make_db: MakeDb
) -> None:
    db = await make_db()
    await migrations.upgrade(service, db)
    first = await schema(db)
    for _ in range(2):
        await migrations.downgrade(service, db, "base")
        assert await schema(db) == {}
        assert await migrations.current(service, db) is None
        await migrations.upgrade(service, db)
        assert await schema(db) == first
