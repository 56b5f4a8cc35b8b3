"""Every service's migrations and the platform tables' types: a fresh upgrade builds the
platform tables the code uses (``ates.platform.tables``) and is at the head, a second
upgrade (or a second process upgrading at the same moment) finds nothing to do, a database
made by the chains as they were before the platform tables had revisions of their own
(#15 item 8) upgrades to the same schema and keeps its rows, a downgrade to base leaves no
table behind, and times and positions come back as they went in."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from ates.config import SERVICES
from ates.platform import migrations, sessions, tables
from ates.platform.db import Database
from tests.integration.database_contract.base import DatabaseBase, MakeDb
from tests.integration.migration_schema import SNAPSHOT, fingerprint, revisions, schema

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


def _head(service: str) -> str | None:
    return ScriptDirectory.from_config(migrations.alembic_config(service)).get_current_head()


async def _table_names(db: Database) -> set[str]:
    async with db.engine.connect() as connection:
        names = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
    return set(names)


async def _rows(db: Database) -> dict[str, list[Any]]:
    async with db.engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in await connection.execute(sa.select(table).order_by(*table.primary_key))
            ]
            for table in (tables.outbox, tables.inbox, tables.dead_letters)
        }


class MigrationContract(DatabaseBase):
    @pytest.mark.parametrize("service", SERVICES)
    async def test_every_service_migrates_to_its_head_once(
        self, service: str, make_db: MakeDb
    ) -> None:
        db = await make_db()
        await migrations.upgrade(service, db)
        await migrations.upgrade(service, db)  # again: nothing to do, no error
        assert await migrations.current(service, db) == _head(service)
        assert {"outbox", "inbox", "dead_letters", "consumer_positions"} <= await _table_names(db)

    @pytest.mark.parametrize("service", SERVICES)
    async def test_two_processes_migrating_at_once_build_one_schema(
        self, service: str, make_db: MakeDb, database_url: str
    ) -> None:
        """``ates serve`` migrates by default: two processes starting together take
        turns (PostgreSQL: an advisory lock; SQLite: the write lock), the second finds
        nothing to do."""
        first, second = Database(database_url), Database(database_url)
        try:
            await asyncio.gather(
                migrations.upgrade(service, first), migrations.upgrade(service, second)
            )
            assert await migrations.current(service, second) == _head(service)
            alone = await make_db()
            await migrations.upgrade(service, alone)
            assert await schema(first) == await schema(alone)
        finally:
            await first.dispose()
            await second.dispose()

    @pytest.mark.parametrize("service", SERVICES)
    async def test_a_fresh_upgrade_builds_the_platform_tables_the_code_uses(
        self, service: str, make_db: MakeDb
    ) -> None:
        migrated, live = await make_db(), await make_db()
        await migrations.upgrade(service, migrated)
        async with live.engine.begin() as connection:
            await connection.run_sync(tables.metadata.create_all)
            await connection.run_sync(sessions.metadata.create_all)
        found = await schema(migrated)
        assert {name: found[name] for name in PLATFORM_TABLES} == await schema(live)

    @pytest.mark.parametrize("service", SERVICES)
    async def test_a_database_of_every_earlier_revision_upgrades_to_the_same_schema_and_rows(
        self, service: str, make_db: MakeDb
    ) -> None:
        """Each database is rebuilt as the former chain left it at that revision (the
        former first revision created the platform tables as they are now, so with the
        dead-letter retry columns), checked against the recorded fingerprint, filled,
        then upgraded."""
        fresh = await make_db()
        recorded = json.loads(SNAPSHOT.read_text())[fresh.engine.dialect.name][service]
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
        self, service: str, make_db: MakeDb
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

    async def test_timestamps_come_back_as_the_same_instant_and_positions_hold_64_bits(
        self, db: Database
    ) -> None:
        berlin_noon = datetime(2025, 3, 3, 12, 0, tzinfo=timezone(timedelta(hours=1)))
        async with db.sessions() as session, session.begin():
            await session.execute(
                sa.insert(tables.consumer_positions).values(
                    consumer="analytics", stream="tasks", position=2**40, updated_at=berlin_noon
                )
            )
        async with db.reader() as session:
            row = (await session.execute(sa.select(tables.consumer_positions))).one()
        assert row.position == 2**40
        assert row.updated_at == berlin_noon
        assert row.updated_at.utcoffset() == timedelta(0)  # UTC inside
