"""The migration of every copy of people from a time per fact to a stamp per fact
(``ates.platform.events.ordering``) keeps what the copy knew, on SQLite and PostgreSQL,
and goes back down."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ates.platform import migrations
from ates.platform.db import Database
from ates.platform.events.ordering import is_newer, stamp
from ates.platform.sqltypes import UtcDateTime
from ates.testing.servers import create_database, database_dsn, drop_database, sqlalchemy_url

pytestmark = pytest.mark.integration

T = datetime(2026, 3, 3, 12, 30, 15, 123456, tzinfo=UTC)

# service: (revision before, table, facts, what else a row of the table needs)
CASES: dict[str, tuple[str, str, tuple[str, ...], dict[str, Any]]] = {
    "tasks": ("0004", "people", ("profile", "role", "active"), {"active": True}),
    "billing": (
        "0003",
        "accounts",
        ("profile", "role", "active"),
        {"kind": "person", "active": True, "balance_cents": 0},
    ),
    "notifications": ("0004", "people", ("profile",), {}),
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'copy.db'}")
        yield db
        await db.dispose()
        return
    dsn = request.getfixturevalue("postgres_dsn")
    name = await create_database(dsn)
    db = Database(sqlalchemy_url(database_dsn(dsn, name)))
    try:
        yield db
    finally:
        await db.dispose()
        await drop_database(dsn, name)


@pytest.mark.parametrize("service", CASES)
async def test_times_become_stamps_and_back(service: str, database: Database) -> None:
    before, name, facts, needed = CASES[service]
    await migrations.upgrade(service, database, before)
    key = "owner_public_id" if service == "billing" else "public_id"
    known, unknown = str(uuid.uuid4()), str(uuid.uuid4())

    def row(person: str, at: datetime | None) -> dict[str, Any]:
        return {**needed, "public_id": str(uuid.uuid4()), key: person} | {
            f"{fact}_at": at for fact in facts
        }

    with_times = sa.table(
        name,
        *(sa.column(column) for column in {**needed, "public_id": 0, key: 0}),
        *(sa.column(f"{fact}_at", UtcDateTime()) for fact in facts),
    )
    async with database.engine.begin() as connection:
        await connection.execute(sa.insert(with_times), [row(known, T), row(unknown, None)])

    await migrations.upgrade(service, database)
    stamps = sa.table(name, sa.column(key), *(sa.column(f"{f}_stamp") for f in facts))
    async with database.engine.connect() as connection:
        found = {
            row[0]: row[1:]
            for row in await connection.execute(
                sa.select(stamps.c[key], *(stamps.c[f"{f}_stamp"] for f in facts))
            )
        }
    old = stamp(T, "")
    assert found[known] == (old,) * len(facts)
    assert found[unknown] == ("",) * len(facts)
    # an event of the same instant still replaces the migrated fact; an earlier one not
    assert is_newer(stamp(T, str(uuid.uuid4())), old)
    assert not is_newer(stamp(T.replace(microsecond=0), str(uuid.uuid4())), old)

    await migrations.downgrade(service, database, before)
    times = sa.table(name, sa.column(key), *(sa.column(f"{f}_at", UtcDateTime()) for f in facts))
    async with database.engine.connect() as connection:
        back = {
            row[0]: row[1:]
            for row in await connection.execute(
                sa.select(times.c[key], *(times.c[f"{f}_at"] for f in facts))
            )
        }
    assert back[known] == (T,) * len(facts)
    assert back[unknown] == (None,) * len(facts)
