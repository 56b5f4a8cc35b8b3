"""Database URLs as people write them reach a real database: libpq's ``postgres://`` and
``postgresql://`` (every hosting platform's form) and a plain ``sqlite:///`` path, each
run through the async driver aTES picks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from ates.config import Settings
from ates.platform import migrations
from ates.platform.db import Database

pytestmark = pytest.mark.integration


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
async def test_a_postgres_url_as_written_is_migrated(postgres_url: str, scheme: str) -> None:
    written = postgres_url.replace("postgresql+asyncpg://", f"{scheme}://", 1)
    settings = Settings(tasks_database_url=written)
    db = Database(settings.database_url("tasks"))
    try:
        await migrations.upgrade("tasks", db)
        assert await migrations.current("tasks", db) is not None
        async with db.reader() as session:
            assert (await session.execute(text("SELECT count(*) FROM assignments"))).scalar() == 0
    finally:
        await db.dispose()


async def test_a_plain_sqlite_url_is_migrated(tmp_path: Path) -> None:
    settings = Settings(billing_database_url=f"sqlite:///{tmp_path / 'billing.db'}")
    db = Database(settings.database_url("billing"))
    try:
        await migrations.upgrade("billing", db)
        assert (tmp_path / "billing.db").exists()
    finally:
        await db.dispose()
