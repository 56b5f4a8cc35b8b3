"""Tasks' shuffle in batches: every open task once, no lock across batches, and two
shuffles at once neither lose nor duplicate an assignment (``FOR UPDATE`` on PostgreSQL,
where real parallel transactions meet row locks; ``BEGIN IMMEDIATE`` on SQLite).

Tasks are created and completed through the service's HTTP API, as people do."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ates.platform.runtime import Runtime
from ates.services.tasks.models import Task
from ates.services.tasks.shuffle import shuffle_batch, shuffle_tasks
from tests.integration.database_contract.base import DatabaseBase
from tests.integration.tasks.helpers import hire, outbox_events
from tests.support import Harness, TokenFactory, make_settings, service_harness


class Desk:
    """The tasks service with its HTTP client: create and complete tasks as people do."""

    def __init__(self, harness: Harness, tokens: TokenFactory) -> None:
        self.harness = harness
        self.runtime = harness.runtime
        self.tokens = tokens

    async def create(self, count: int) -> list[dict[str, Any]]:
        made = []
        for i in range(count):
            response = await self.harness.client.post(
                "/api/tasks", json={"title": f"Task {i}"}, headers=self.tokens.headers()
            )
            assert response.status_code == 201, response.text
            made.append(response.json())
        return made

    async def complete(self, task: dict[str, Any]) -> None:
        """Completed by whoever holds the task right then (a shuffle may move it between
        the look and the click: then the holder's colleague tries again)."""
        for _ in range(20):
            async with self.runtime.db.reader() as session:
                holder = await session.scalar(
                    select(Task.assignee_public_id).where(Task.public_id == task["public_id"])
                )
            response = await self.harness.client.post(
                f"/api/tasks/{task['public_id']}/complete",
                headers=self.tokens.headers(sub=str(holder)),
            )
            if response.status_code == 200:
                return
            assert response.status_code == 403, response.text  # moved meanwhile
        raise AssertionError(f"task {task['public_id']} could not be completed")


async def _assignees(runtime: Runtime) -> dict[str, tuple[str, str]]:
    async with runtime.db.reader() as session:
        rows = await session.execute(select(Task.public_id, Task.assignee_public_id, Task.status))
        return {row.public_id: (row.assignee_public_id, row.status) for row in rows}


async def assert_unbroken_chains(runtime: Runtime) -> list[dict[str, Any]]:
    """In outbox order, each task's TaskAssigned names the assignee the one before set,
    a TaskCompleted names the assignee of that moment and nothing moves the task after
    it, and the last assignment is today's assignee. Returns the shuffle events."""
    current: dict[str, str] = {}
    completed: set[str] = set()
    shuffled = []
    for envelope in await outbox_events(runtime.db):
        data = envelope["data"]
        if envelope["event_name"] == "TaskCompleted":
            assert data["assignee_public_id"] == current[data["task_public_id"]], data
            completed.add(data["task_public_id"])
            continue
        if envelope["event_name"] != "TaskAssigned":
            continue
        task = data["task_public_id"]
        assert task not in completed, f"{task} moved after it was done"
        if data["reason"] == "created":
            assert task not in current
        else:
            assert data["previous_assignee_public_id"] == current[task], data
            shuffled.append(data)
        current[task] = data["assignee_public_id"]
    now = await _assignees(runtime)
    assert current == {k: v for k, (v, _) in now.items()}
    assert completed == {k for k, (_, status) in now.items() if status == "done"}
    return shuffled


class TasksContract(DatabaseBase):
    @pytest.fixture
    async def desk(
        self, tmp_path: Path, database_url: str, tokens: TokenFactory
    ) -> AsyncIterator[Desk]:
        """The tasks service in-process on this database, without a broker: what it
        would publish stays in its outbox, where the tests read it."""
        settings = make_settings(tmp_path / "data", None, tasks_database_url=database_url)
        async with service_harness("tasks", settings, tokens, messaging=False) as harness:
            yield Desk(harness, tokens)

    async def test_a_batched_shuffle_moves_every_open_task_exactly_once(self, desk: Desk) -> None:
        workers = [await hire(desk.runtime, name=f"Worker {i}") for i in range(5)]
        made = await desk.create(50)
        for task in made[::5]:
            await desk.complete(task)
        open_ids = {t["public_id"] for t in made} - {t["public_id"] for t in made[::5]}

        result = await shuffle_tasks(desk.runtime.uow, batch_size=7, rng=random.Random(1))

        assert result.reassigned == 40
        shuffled = await assert_unbroken_chains(desk.runtime)
        assert Counter(e["task_public_id"] for e in shuffled) == dict.fromkeys(open_ids, 1)
        assert {e["shuffle_id"] for e in shuffled} == {result.shuffle_id}
        assert {e["assignee_public_id"] for e in shuffled} == set(workers)

    async def test_no_lock_is_held_between_batches(self, desk: Desk) -> None:
        await hire(desk.runtime)
        await desk.create(10)
        shuffle_id = str(uuid.uuid4())
        async with desk.runtime.uow() as uow:
            first = await shuffle_batch(uow, shuffle_id, after=0, upto=10, size=4)
        assert (first.reassigned, first.last_id) == (4, 4)

        # Mid-shuffle, a task can be created (a held write lock would stall this for the
        # 30 s busy timeout, a held row lock until the shuffle ends).
        (meanwhile,) = await asyncio.wait_for(desk.create(1), timeout=5)

        after = first.last_id
        moved = first.reassigned
        while after is not None:
            async with desk.runtime.uow() as uow:
                batch = await shuffle_batch(uow, shuffle_id, after=after, upto=10, size=4)
            moved += batch.reassigned
            after = batch.last_id
        assert moved == 10  # the task created meanwhile (id 11) was not part of this shuffle
        shuffled = await assert_unbroken_chains(desk.runtime)
        assert meanwhile["public_id"] not in {e["task_public_id"] for e in shuffled}

    async def test_two_shuffles_at_once_keep_every_chain(self, desk: Desk) -> None:
        for i in range(4):
            await hire(desk.runtime, name=f"Worker {i}")
        made = await desk.create(60)
        done = made[::6]

        async def complete_some() -> None:
            # completions race the shuffles
            for task in done:
                await desk.complete(task)
                await asyncio.sleep(0)  # let the shuffles' batches in between completions

        first, second, _ = await asyncio.gather(
            shuffle_tasks(desk.runtime.uow, batch_size=5),
            shuffle_tasks(desk.runtime.uow, batch_size=7),
            complete_some(),
        )

        shuffled = await assert_unbroken_chains(desk.runtime)
        per_shuffle = Counter((e["shuffle_id"], e["task_public_id"]) for e in shuffled)
        assert set(per_shuffle.values()) == {1}
        never_done = {t["public_id"] for t in made} - {t["public_id"] for t in done}
        for result in (first, second):
            moved = {t for (s, t) in per_shuffle if s == result.shuffle_id}
            assert never_done <= moved
            assert result.reassigned == len(moved)

    async def test_a_shuffle_skips_tasks_completed_before_their_batch(self, desk: Desk) -> None:
        await hire(desk.runtime)
        made = await desk.create(12)
        shuffle_id = str(uuid.uuid4())
        async with desk.runtime.uow() as uow:
            first = await shuffle_batch(uow, shuffle_id, after=0, upto=12, size=6)
        for task in made[6:9]:
            await desk.complete(task)
        async with desk.runtime.uow() as uow:
            second = await shuffle_batch(uow, shuffle_id, after=first.last_id or 0, upto=12, size=6)
        assert (first.reassigned, second.reassigned) == (6, 3)
        shuffled = await assert_unbroken_chains(desk.runtime)
        assert {t["public_id"] for t in made[6:9]}.isdisjoint(e["task_public_id"] for e in shuffled)
