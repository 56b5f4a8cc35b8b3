"""T5: give every open task to a random active worker, in batches.

The shuffle walks the open tasks by id (keyset pagination) in batches. Each batch is one
unit of work: it reads the tasks and the active workers, writes the new assignees and
one ``TaskAssigned`` per task, and commits. So:

- memory is bounded by the batch size, not by the number of tasks;
- no lock is held between batches, so people keep creating and completing tasks while a
  long shuffle runs;
- two shuffles at once never lose or duplicate an assignment: a batch reads the current
  assignee in the same transaction that replaces it (``FOR UPDATE`` on PostgreSQL,
  ``BEGIN IMMEDIATE`` on SQLite), so each ``TaskAssigned`` names the assignee it really
  replaced, and the assignments of one task form one unbroken chain.

Tasks created after the shuffle started are left alone: they were just given a random
worker, and a shuffle must end even while tasks keep coming.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select, update

from ates.platform.uow import UnitOfWork
from ates.schemas.tasks import TaskAssigned
from ates.services.tasks import queries
from ates.services.tasks.commands import history_row
from ates.services.tasks.domain import OPEN, NoActiveWorker, draw_assignees
from ates.services.tasks.models import AssignmentRecord, Task

BATCH_SIZE = 2_000

_tasks = cast(Table, Task.__table__)
_reassign = (
    update(_tasks)
    .where(_tasks.c.id == bindparam("task_id"))
    .values(assignee_public_id=bindparam("assignee"))
)
_record = insert(cast(Table, AssignmentRecord.__table__))


@dataclass(frozen=True, slots=True)
class ShuffleResult:
    shuffle_id: str
    reassigned: int


@dataclass(frozen=True, slots=True)
class Batch:
    reassigned: int
    last_id: int | None  # None: nothing left to shuffle


async def shuffle_tasks(
    new_uow: Callable[[], UnitOfWork],
    *,
    batch_size: int = BATCH_SIZE,
    rng: random.Random | None = None,
) -> ShuffleResult:
    """Reassign every task open when the shuffle starts; raises ``NoActiveWorker``
    (nothing changed) when there is nobody to give tasks to."""
    shuffle_id = str(uuid.uuid4())
    async with new_uow() as uow:
        if await queries.random_active_worker(uow) is None:
            raise NoActiveWorker("there is no active worker to give tasks to")
        upto = await uow.session.scalar(select(func.max(Task.id)))
    total, after = 0, 0
    while upto is not None:
        async with new_uow() as uow:
            batch = await shuffle_batch(
                uow, shuffle_id, after=after, upto=upto, size=batch_size, rng=rng
            )
        if batch.last_id is None:
            break
        total += batch.reassigned
        after = batch.last_id
    return ShuffleResult(shuffle_id, total)


async def shuffle_batch(
    uow: UnitOfWork,
    shuffle_id: str,
    *,
    after: int,
    upto: int,
    size: int = BATCH_SIZE,
    rng: random.Random | None = None,
) -> Batch:
    """Reassign the next ``size`` open tasks with ``after < id <= upto``; commits."""
    query = (
        select(_tasks.c.id, _tasks.c.public_id, _tasks.c.assignee_public_id)
        .where(_tasks.c.status == OPEN, _tasks.c.id > after, _tasks.c.id <= upto)
        .order_by(_tasks.c.id)
        .limit(size)
        .with_for_update()
    )
    rows = (await uow.session.execute(query)).all()
    if not rows:
        return Batch(0, None)
    workers = await queries.active_workers(uow)
    if not workers:
        # everybody left mid-shuffle: what was reassigned stays, the rest keep theirs
        return Batch(0, None)
    assignees = draw_assignees(workers, len(rows), rng)
    await uow.session.execute(
        _reassign,
        [{"task_id": row.id, "assignee": new} for row, new in zip(rows, assignees, strict=True)],
    )
    assignments = [
        TaskAssigned(row.public_id, new, row.assignee_public_id, "shuffle", shuffle_id)
        for row, new in zip(rows, assignees, strict=True)
    ]
    # the history in one executemany, like the reassignment itself
    now = datetime.now(UTC)
    await uow.session.execute(_record, [history_row(a, now) for a in assignments])
    await uow.emit_many(assignments)
    await uow.commit()
    return Batch(len(rows), rows[-1].id)
