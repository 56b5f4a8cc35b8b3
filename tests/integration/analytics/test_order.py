"""Out of order and twice over: any arrival order of the same events, with duplicates,
leaves exactly the projections that the order they happened in leaves, on SQLite and on
PostgreSQL (whose upserts and locks are the ones production runs)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Table, delete, select

from ates.platform import migrations
from ates.platform.consumer import EventConsumer
from ates.platform.db import Database
from ates.platform.events import Event, default_registry
from ates.platform.tables import inbox
from ates.platform.uow import UnitOfWork
from ates.services.analytics.consumers import HANDLERS, reset_projections
from ates.services.analytics.models import PROJECTIONS, TopCompletion
from ates.testing.workload import make, new_id, rfc3339, simulate

pytestmark = pytest.mark.integration


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


async def apply_all(db: Database, events: list[Event]) -> None:
    consumer = EventConsumer("analytics", db, HANDLERS, default_registry())
    for event in events:
        await consumer.apply(default_registry().upcast(event))


async def forget(db: Database) -> None:
    async with UnitOfWork(db, producer="analytics") as uow:
        await reset_projections(uow)
        await uow.session.execute(delete(inbox))
        await uow.commit()


async def test_any_order_gives_the_same_projections_on_sqlite(tmp_path: Path) -> None:
    async with migrated(f"sqlite+aiosqlite:///{tmp_path / 'analytics.db'}") as db:
        await any_order_gives_the_same_projections(db)


@pytest.mark.postgres
async def test_any_order_gives_the_same_projections_on_postgres(postgres_url: str) -> None:
    async with migrated(postgres_url) as db:
        await any_order_gives_the_same_projections(db)


async def any_order_gives_the_same_projections(db: Database) -> None:
    w = simulate(ZoneInfo("Europe/Berlin"), date(2024, 3, 29), date(2024, 4, 1), seed=3)
    await apply_all(db, w.events)
    in_order = await projections(db)
    assert len(in_order["tasks"]) == sum(1 for e in w.events if e.event_name == "TaskCreated")
    assert in_order["top_completions"]
    for seed in range(3):
        rng = random.Random(seed)
        scrambled = list(w.events) + rng.sample(w.events, len(w.events) // 4)
        rng.shuffle(scrambled)
        if seed == 0:  # the worst case: everything backwards
            scrambled = list(reversed(w.events)) + list(reversed(w.events))
        await forget(db)
        await apply_all(db, scrambled)
        assert await projections(db) == in_order, seed


async def test_the_top_of_a_bucket_is_its_most_expensive_task(tmp_path: Path) -> None:
    """Tasks completed within the same quarter hour compete for one row: the highest
    reward wins; on equal rewards the earlier completion; arrival order never matters."""
    start = datetime(2024, 3, 3, 12, 0, tzinfo=UTC)
    rewards = [(2500, 1), (3100, 2), (3100, 7), (2900, 3), (3100, 5)]  # (reward, minute)
    events = []
    for reward, minute in rewards:
        task = new_id()
        events.append(make("TaskPriced", priced(task, reward), start))
        completed = start + timedelta(minutes=minute)
        events.append(make("TaskCompleted", completion(task, completed), completed))
    winner = events[3].data  # 3100 at minute 2: the earliest of the 3100s
    async with migrated(f"sqlite+aiosqlite:///{tmp_path / 'analytics.db'}") as db:
        for seed in range(4):
            rng = random.Random(seed)
            await forget(db)
            await apply_all(db, rng.sample(events, len(events)))
            async with db.reader() as session:
                rows = (await session.execute(select(TopCompletion))).scalars().all()
            assert [(r.task_public_id, r.reward_cents) for r in rows] == [
                (winner["task_public_id"], 3100)
            ]
            assert rows[0].completed_at == start + timedelta(minutes=2)


def priced(task: str, reward: int) -> dict[str, Any]:
    return {"task_public_id": task, "assign_fee_cents": 1500, "reward_cents": reward}


def completion(task: str, at: datetime) -> dict[str, Any]:
    return {"task_public_id": task, "assignee_public_id": new_id(), "completed_at": rfc3339(at)}
