"""The database contract on SQLite (a file per database, WAL, ``BEGIN IMMEDIATE``)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from ates.platform.db import Database
from tests.integration.database_contract import DatabaseContract, LockWatch, MakeUrl

pytestmark = pytest.mark.integration


class SqliteLockWatch:
    """SQLite has no view of who waits: a connection that tried to begin a write while
    another held the write lock was told "database is locked" and waits (retrying
    ``BEGIN IMMEDIATE``, ``ates.platform.db``). Each such refusal is counted."""

    def __init__(self) -> None:
        self.refusals = 0

    def watch(self, db: Database) -> None:
        @event.listens_for(db.engine.sync_engine, "handle_error")
        def _refused(context: Any) -> None:
            if "locked" in str(context.original_exception):
                self.refusals += 1

    async def waiting(self) -> bool:
        return self.refusals > 0


class TestSqliteDatabase(DatabaseContract):
    @pytest.fixture
    def make_database_url(self, tmp_path: Path) -> MakeUrl:
        async def make() -> str:
            return f"sqlite+aiosqlite:///{tmp_path / 'databases' / uuid.uuid4().hex}.db"

        return make

    @pytest.fixture
    def lock_watch(self) -> LockWatch:
        return SqliteLockWatch()
