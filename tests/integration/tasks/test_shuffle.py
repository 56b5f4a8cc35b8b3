"""The shuffle in batches: every open task once, no lock across batches, and two shuffles
at once neither lose nor duplicate an assignment (SQLite, and PostgreSQL where real
parallel transactions meet row locks)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ates.config import Settings
from ates.platform.runtime import Runtime
from ates.services.tasks.commands import CreateTask, complete_task, create_task
from ates.services.tasks.models import Task
from ates.services.tasks.shuffle import shuffle_batch, shuffle_tasks
from tests.integration.tasks.helpers import hire, outbox_events
from tests.support import Harness, TokenFactory, make_settings, service_harness

pytestmark = pytest.mark.integration


async def _make_tasks(runtime: Runtime, count: int) -> list[Task]:
    made = []
    for i in range(count):
        async with runtime.uow() as uow:
            made.append(await create_task(uow, CreateTask(title=f"Task {i}")))
    return made


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


async def test_a_batched_shuffle_moves_every_open_task_exactly_once(tasks: Harness) -> None:
    workers = [await hire(tasks.runtime, name=f"Worker {i}") for i in range(5)]
    made = await _make_tasks(tasks.runtime, 50)
    for task in made[::5]:
        async with tasks.runtime.uow() as uow:
            await complete_task(uow, task.public_id, by=task.assignee_public_id)
    open_ids = {t.public_id for t in made} - {t.public_id for t in made[::5]}

    result = await shuffle_tasks(tasks.runtime.uow, batch_size=7, rng=random.Random(1))

    assert result.reassigned == 40
    shuffled = await assert_unbroken_chains(tasks.runtime)
    assert Counter(e["task_public_id"] for e in shuffled) == dict.fromkeys(open_ids, 1)
    assert {e["shuffle_id"] for e in shuffled} == {result.shuffle_id}
    assert {e["assignee_public_id"] for e in shuffled} == set(workers)


async def test_no_lock_is_held_between_batches(tasks: Harness, tokens: TokenFactory) -> None:
    await hire(tasks.runtime)
    await _make_tasks(tasks.runtime, 10)
    shuffle_id = str(uuid.uuid4())
    async with tasks.runtime.uow() as uow:
        first = await shuffle_batch(uow, shuffle_id, after=0, upto=10, size=4)
    assert (first.reassigned, first.last_id) == (4, 4)

    # Mid-shuffle, a task can be created (a held SQLite write lock would stall this for the
    # 30 s busy timeout) — and completed.
    response = await asyncio.wait_for(
        tasks.client.post("/api/tasks", json={"title": "Meanwhile"}, headers=tokens.headers()),
        timeout=5,
    )
    assert response.status_code == 201

    after = first.last_id
    moved = first.reassigned
    while after is not None:
        async with tasks.runtime.uow() as uow:
            batch = await shuffle_batch(uow, shuffle_id, after=after, upto=10, size=4)
        moved += batch.reassigned
        after = batch.last_id
    assert moved == 10  # the task created meanwhile (id 11) was not part of this shuffle
    shuffled = await assert_unbroken_chains(tasks.runtime)
    assert response.json()["public_id"] not in {e["task_public_id"] for e in shuffled}


async def _two_shuffles_at_once(runtime: Runtime) -> None:
    for i in range(4):
        await hire(runtime, name=f"Worker {i}")
    made = await _make_tasks(runtime, 60)
    done = made[::6]

    async def complete_some() -> None:
        # completions race the shuffles: complete as whoever holds the task right then
        for task in done:
            async with runtime.uow() as uow:
                holder = await uow.session.scalar(
                    select(Task.assignee_public_id)
                    .where(Task.public_id == task.public_id)
                    .with_for_update()
                )
                assert holder is not None
                await complete_task(uow, task.public_id, by=holder)
            await asyncio.sleep(0)  # let the shuffles' batches in between completions

    first, second, _ = await asyncio.gather(
        shuffle_tasks(runtime.uow, batch_size=5),
        shuffle_tasks(runtime.uow, batch_size=7),
        complete_some(),
    )

    shuffled = await assert_unbroken_chains(runtime)
    per_shuffle = Counter((e["shuffle_id"], e["task_public_id"]) for e in shuffled)
    assert set(per_shuffle.values()) == {1}
    never_done = {t.public_id for t in made} - {t.public_id for t in done}
    for result in (first, second):
        moved = {t for (s, t) in per_shuffle if s == result.shuffle_id}
        assert never_done <= moved
        assert result.reassigned == len(moved)


async def test_two_shuffles_at_once_keep_every_chain_on_sqlite(tasks: Harness) -> None:
    await _two_shuffles_at_once(tasks.runtime)


async def test_a_shuffle_skips_tasks_completed_before_their_batch(tasks: Harness) -> None:
    await hire(tasks.runtime)
    made = await _make_tasks(tasks.runtime, 12)
    shuffle_id = str(uuid.uuid4())
    async with tasks.runtime.uow() as uow:
        first = await shuffle_batch(uow, shuffle_id, after=0, upto=12, size=6)
    for task in made[6:9]:
        async with tasks.runtime.uow() as uow:
            await complete_task(uow, task.public_id, by=task.assignee_public_id)
    async with tasks.runtime.uow() as uow:
        second = await shuffle_batch(uow, shuffle_id, after=first.last_id or 0, upto=12, size=6)
    assert (first.reassigned, second.reassigned) == (6, 3)
    shuffled = await assert_unbroken_chains(tasks.runtime)
    assert {t.public_id for t in made[6:9]}.isdisjoint(e["task_public_id"] for e in shuffled)


# --- PostgreSQL: real parallel transactions ----------------------------------------------


@pytest.fixture
def pg_settings(tmp_path: Path, postgres_url: str) -> Settings:
    """The suite's PostgreSQL (``tests.backends``): a database of this test's own, and
    under ``CI=true`` a missing server fails the test instead of skipping it."""
    return make_settings(tmp_path / "data", None, tasks_database_url=postgres_url)


@pytest.mark.postgres
async def test_two_shuffles_at_once_keep_every_chain_on_postgresql(
    pg_settings: Settings, tokens: TokenFactory
) -> None:
    async with service_harness("tasks", pg_settings, tokens, messaging=False) as harness:
        await _two_shuffles_at_once(harness.runtime)
