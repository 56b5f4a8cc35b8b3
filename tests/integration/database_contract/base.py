"""What every part of the database contract stands on: a fresh database per test, and a
way to see that a second connection waits for a lock the first one holds.

A subclass for one database provides the fixtures ``make_database_url`` (a factory of
fresh, empty databases, dropped after the test) and ``lock_watch``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import pytest

from ates.platform import migrations
from ates.platform.db import Database

MakeUrl = Callable[[], Awaitable[str]]
MakeDb = Callable[[], Awaitable[Database]]


class LockWatch(Protocol):
    """Whether a connection waits for a lock another transaction holds (a row, a key, an
    advisory lock on PostgreSQL; the write lock on SQLite)."""

    def watch(self, db: Database) -> None:
        """Start watching the connections of ``db`` (before they try to take a lock)."""

    async def waiting(self) -> bool:
        """Whether one of the watched connections waits, or waited, for a lock."""


class DatabaseBase:
    @pytest.fixture
    def make_database_url(self) -> MakeUrl:
        """A factory of fresh, empty databases' URLs, each dropped after the test."""
        raise NotImplementedError

    @pytest.fixture
    def lock_watch(self) -> LockWatch:
        raise NotImplementedError

    @pytest.fixture
    async def database_url(self, make_database_url: MakeUrl) -> str:
        return await make_database_url()

    @pytest.fixture
    async def make_db(self, make_database_url: MakeUrl) -> AsyncIterator[MakeDb]:
        """Fresh databases (engines on fresh, empty databases), disposed of after."""
        made: list[Database] = []

        async def make() -> Database:
            made.append(Database(await make_database_url()))
            return made[-1]

        try:
            yield make
        finally:
            for db in made:
                await db.dispose()

    @pytest.fixture
    async def db(self, database_url: str) -> AsyncIterator[Database]:
        """A database migrated as notifications' (the platform tables, little else)."""
        database = Database(database_url)
        await migrations.upgrade("notifications", database)
        yield database
        await database.dispose()  # an engine left open outlives its event loop

    @pytest.fixture
    async def other_process_db(
        self, db: Database, database_url: str, lock_watch: LockWatch
    ) -> AsyncIterator[Database]:
        """The same database through an engine of its own, as a second process would
        have; its lock waits are watched."""
        database = Database(database_url)
        lock_watch.watch(database)
        yield database
        await database.dispose()
