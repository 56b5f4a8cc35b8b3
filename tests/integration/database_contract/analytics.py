"""Analytics out of order and twice over: any arrival order of the same events, with
duplicates, leaves exactly the projections that the order they happened in leaves (the
upserts and locks of each database). The events go through analytics' own handlers, as
its service spec wires them."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from ates.platform.consumer import EventConsumer
from ates.platform.db import Database
from ates.platform.events import Event, default_registry
from ates.platform.tables import inbox
from ates.platform.uow import UnitOfWork
from ates.services.analytics.models import TopCompletion
from ates.services.registry import spec
from ates.testing.workload import make, new_id, rfc3339, simulate
from tests.integration.analytics.projections import migrated, projections
from tests.integration.database_contract.base import DatabaseBase


async def apply_all(db: Database, events: list[Event]) -> None:
    consumer = EventConsumer("analytics", db, spec("analytics").consumes, default_registry())
    for event in events:
        await consumer.apply(default_registry().upcast(event))


async def forget(db: Database) -> None:
    reset = spec("analytics").read_model_reset
    assert reset is not None
    async with UnitOfWork(db, producer="analytics") as uow:
        await reset(uow)
        await uow.session.execute(delete(inbox))
        await uow.commit()


def priced(task: str, reward: int) -> dict[str, Any]:
    return {"task_public_id": task, "assign_fee_cents": 1500, "reward_cents": reward}


def completion(task: str, at: datetime) -> dict[str, Any]:
    return {"task_public_id": task, "assignee_public_id": new_id(), "completed_at": rfc3339(at)}


class AnalyticsContract(DatabaseBase):
    async def test_any_order_gives_the_same_projections(self, database_url: str) -> None:
        w = simulate(ZoneInfo("Europe/Berlin"), date(2024, 3, 29), date(2024, 4, 1), seed=3)
        async with migrated(database_url) as db:
            await apply_all(db, w.events)
            in_order = await projections(db)
            created = sum(1 for e in w.events if e.event_name == "TaskCreated")
            assert len(in_order["tasks"]) == created
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

    async def test_the_top_of_a_bucket_is_its_most_expensive_task(self, database_url: str) -> None:
        """Tasks completed within the same quarter hour compete for one row: the highest
        reward wins; on equal rewards the earlier completion; arrival order never
        matters."""
        start = datetime(2024, 3, 3, 12, 0, tzinfo=UTC)
        rewards = [(2500, 1), (3100, 2), (3100, 7), (2900, 3), (3100, 5)]  # (reward, minute)
        events = []
        for reward, minute in rewards:
            task = new_id()
            events.append(make("TaskPriced", priced(task, reward), start))
            completed = start + timedelta(minutes=minute)
            events.append(make("TaskCompleted", completion(task, completed), completed))
        winner = events[3].data  # 3100 at minute 2: the earliest of the 3100s
        async with migrated(database_url) as db:
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
