"""Analytics' projections as plain rows, on a migrated database of its own: to compare
what different arrival orders (or batchings) of the same events leave behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import Table, select

from ates.platform import migrations
from ates.platform.db import Database
from ates.services.analytics.models import PROJECTIONS


@asynccontextmanager
async def migrated(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    await migrations.upgrade("analytics", database)
    try:
        yield database
    finally:
        await database.dispose()


async def projections(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    result = {}
    async with db.reader() as session:
        for model in PROJECTIONS:
            table = cast(Table, model.__table__)
            rows = await session.execute(select(table).order_by(*table.primary_key.columns))
            result[table.name] = [tuple(row) for row in rows]
    return result
