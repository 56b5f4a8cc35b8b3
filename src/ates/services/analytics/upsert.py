"""``INSERT … ON CONFLICT``, the atomic write every projection update is made of.

An upsert changes a row in one statement, so two analytics processes applying events to
the same row never lose an update (no read-modify-write), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

# ``excluded`` (the would-be-inserted row) -> what to set / when to set it
Update = Callable[[Any], Mapping[str, Any]]
Where = Callable[[Any], ColumnElement[bool]]


async def upsert(
    session: AsyncSession,
    model: type[Any],
    values: Mapping[str, Any],
    *,
    keys: Sequence[str],
    update: Update | None = None,
    where: Where | None = None,
) -> None:
    """Insert ``values``; if a row with the same ``keys`` exists, set ``update(excluded)``
    instead, only where ``where(excluded)`` holds. No ``update``: keep the existing row."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(model).values(**values)
    if update is None:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    else:
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_=update(new),
            where=where(new) if where is not None else None,
        )
    await session.execute(statement)
