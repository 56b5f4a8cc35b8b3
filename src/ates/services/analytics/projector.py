"""Projecting a run of task and money events at once: what the consumer hands analytics
in one batch.

Every projection is a merge that does not care about order — sums per day, the latest
balance by stamp, the best completion of a bucket by rank, the first completion and the
only price of a task — so a run is folded in memory, in delivery order, and written with
one multi-row upsert per table: the same rows as applying the events one by one, in a
handful of statements. Only the tasks are read first, for the two checks that refuse an
event (a task completed at two different moments, priced twice differently) and for the
completions whose price or completion arrived earlier.

The upserts keep the merges atomic as the per-event ones were: a sum adds to what the row
holds, a balance or a bucket's best is replaced only by a newer stamp or a better rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any, assert_never, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ates.platform.consumer import Rejected
from ates.platform.events import Event
from ates.platform.events.ordering import NEVER, event_stamp, is_newer, stamp
from ates.platform.sql import insert_for
from ates.platform.uow import UnitOfWork
from ates.schemas import payload_of
from ates.schemas.billing import DayClosed, PayoutMade, TaskPriced, TransactionApplied
from ates.schemas.tasks import TaskAssigned, TaskCompleted, TaskCreated
from ates.services.analytics.domain import (
    Completion,
    bucket_of,
    earnings_effect,
    parse_instant,
)
from ates.services.analytics.models import (
    Balance,
    ClosedDay,
    DailyEarnings,
    Task,
    TopCompletion,
)

_tasks = sa.Table("tasks", Task.metadata)
_days = sa.Table("earnings_by_day", DailyEarnings.metadata)
_balances = sa.Table("balances", Balance.metadata)
_tops = sa.Table("top_completions", TopCompletion.metadata)
_closed = sa.Table("closed_days", ClosedDay.metadata)

# What a run may hold (every event is upcast to the newest version analytics knows).
Projected = (
    TaskCreated
    | TaskAssigned
    | TaskCompleted
    | TaskPriced
    | TransactionApplied
    | PayoutMade
    | DayClosed
)
EVENTS: tuple[str, ...] = tuple(cls.event_name for cls in get_args(Projected))
_TASKS = sa.select(_tasks).where(_tasks.c.public_id.in_(sa.bindparam("ids", expanding=True)))
_AMOUNTS = ("fees_cents", "rewards_cents", "payouts_cents", "fee_count", "reward_count")


@dataclass(slots=True)
class _Task:
    public_id: str
    title: str | None = None
    jira_id: str | None = None
    assign_fee_cents: int | None = None
    reward_cents: int | None = None
    assignments: int = 0
    assignee_public_id: str | None = None
    assignee_stamp: str = NEVER
    completed_at: datetime | None = None
    completed_by: str | None = None


@dataclass
class _Fold:
    """A run folded into the rows it changes, not yet written."""

    tasks: dict[str, _Task]
    changed: set[str] = field(default_factory=set)
    days: dict[date, dict[str, int]] = field(default_factory=dict)
    balances: dict[str, tuple[str, int]] = field(default_factory=dict)  # owner: stamp, cents
    best: dict[int, Completion] = field(default_factory=dict)  # bucket: best completion
    closed: dict[date, datetime] = field(default_factory=dict)

    def task(self, public_id: str) -> _Task:
        task = self.tasks.get(public_id)
        if task is None:
            task = self.tasks[public_id] = _Task(public_id)
        self.changed.add(public_id)
        return task

    def add_to_day(self, day: date, **amounts: int) -> None:
        totals = self.days.setdefault(day, dict.fromkeys(_AMOUNTS, 0))
        for name, cents in amounts.items():
            totals[name] += cents

    def rank(self, task: _Task) -> None:
        """Once a task is both completed and priced, it competes for its bucket's top."""
        if task.completed_at is None or task.reward_cents is None:
            return
        candidate = Completion(task.public_id, task.reward_cents, task.completed_at)
        bucket = bucket_of(task.completed_at)
        best = self.best.get(bucket)
        if best is None or candidate.rank() < best.rank():
            self.best[bucket] = candidate


async def project(events: Sequence[Event], uow: UnitOfWork) -> None:
    """Apply a run of the :data:`EVENTS` in order (see the module's docstring)."""
    payloads = [_projected(event) for event in events]
    connection = await uow.session.connection()
    fold = _Fold(await _read_tasks(connection, payloads))
    for event, payload in zip(events, payloads, strict=True):
        _fold(fold, event, payload)
    await _write(connection, fold)


def _projected(event: Event) -> Projected:
    payload = payload_of(event)
    if not isinstance(payload, Projected):
        raise ValueError(f"analytics does not project {event.event_name} in runs")
    return payload


def _fold(fold: _Fold, event: Event, payload: Projected) -> None:
    match payload:
        case TaskCreated():  # v2 (v1 is upcast on arrival: jira id out of the title)
            task = fold.task(payload.public_id)
            task.title, task.jira_id = payload.title, payload.jira_id
        case TaskAssigned():
            task = fold.task(payload.task_public_id)
            task.assignments += 1
            assigned = event_stamp(event)
            if is_newer(assigned, task.assignee_stamp):
                task.assignee_public_id, task.assignee_stamp = payload.assignee_public_id, assigned
        case TaskCompleted():
            task = fold.task(payload.task_public_id)
            completed_at = parse_instant(payload.completed_at)
            if task.completed_at is None:  # a task is completed once; the first one stays
                task.completed_at, task.completed_by = completed_at, payload.assignee_public_id
            elif task.completed_at != completed_at:
                raise Rejected(
                    f"task {task.public_id} completed at {completed_at.isoformat()} "
                    f"but already recorded as completed at {task.completed_at.isoformat()}"
                )
            fold.rank(task)
        case TaskPriced():
            task = fold.task(payload.task_public_id)
            price = (payload.assign_fee_cents, payload.reward_cents)
            if task.assign_fee_cents is None or task.reward_cents is None:  # set once (B3)
                task.assign_fee_cents, task.reward_cents = price
            elif (task.assign_fee_cents, task.reward_cents) != price:
                raise Rejected(f"task {task.public_id} priced twice with different prices")
            fold.rank(task)
        case TransactionApplied():
            kind = payload.kind
            if kind in ("assign_fee", "reward"):
                fees, rewards = earnings_effect(kind, payload.debit_cents, payload.credit_cents)
                fold.add_to_day(
                    date.fromisoformat(payload.business_date),
                    fees_cents=fees,
                    rewards_cents=rewards,
                    fee_count=int(kind == "assign_fee"),
                    reward_count=int(kind == "reward"),
                )
            moved = stamp(parse_instant(payload.applied_at), payload.transaction_public_id)
            owner = payload.owner_public_id
            if owner not in fold.balances or is_newer(moved, fold.balances[owner][0]):
                fold.balances[owner] = (moved, payload.balance_after_cents)
        case PayoutMade():
            day = date.fromisoformat(payload.business_date)
            fold.add_to_day(day, payouts_cents=payload.amount_cents)
        case DayClosed():
            fold.closed.setdefault(date.fromisoformat(payload.business_date), event.event_time)
        case _:
            assert_never(payload)


async def _read_tasks(
    connection: AsyncConnection, payloads: Sequence[Projected]
) -> dict[str, _Task]:
    ids = {
        p.public_id if isinstance(p, TaskCreated) else p.task_public_id
        for p in payloads
        if isinstance(p, TaskCreated | TaskAssigned | TaskCompleted | TaskPriced)
    }
    if not ids:
        return {}
    rows = await connection.execute(_TASKS, {"ids": list(ids)})
    return {row.public_id: _Task(**row._mapping) for row in rows}


async def _write(connection: AsyncConnection, fold: _Fold) -> None:
    statements = _statements(connection.dialect.name)
    if fold.changed:
        await connection.execute(
            statements.tasks,
            [_row(fold.tasks[public_id]) for public_id in sorted(fold.changed)],
        )
    if fold.days:
        await connection.execute(
            statements.days,
            [{"business_date": day, **totals} for day, totals in sorted(fold.days.items())],
        )
    if fold.balances:
        await connection.execute(
            statements.balances,
            [
                {"owner_public_id": owner, "stamp": moved, "balance_cents": cents}
                for owner, (moved, cents) in sorted(fold.balances.items())
            ],
        )
    if fold.best:
        await connection.execute(
            statements.tops,
            [
                {
                    "bucket": bucket,
                    "task_public_id": best.task_public_id,
                    "reward_cents": best.reward_cents,
                    "completed_at": best.completed_at,
                }
                for bucket, best in sorted(fold.best.items())
            ],
        )
    if fold.closed:
        await connection.execute(
            statements.closed,
            [{"business_date": day, "recorded_at": at} for day, at in sorted(fold.closed.items())],
        )


def _row(task: _Task) -> dict[str, Any]:
    return {name: getattr(task, name) for name in _Task.__dataclass_fields__}


@dataclass(frozen=True)
class _Statements:
    tasks: Any
    days: Any
    balances: Any
    tops: Any
    closed: Any


@cache
def _statements(dialect: str) -> _Statements:
    """The upserts, built once per database kind."""
    insert = insert_for(dialect)

    tasks = insert(_tasks)
    tasks = tasks.on_conflict_do_update(
        index_elements=["public_id"],
        set_={c.name: tasks.excluded[c.name] for c in _tasks.c if c.name != "public_id"},
    )
    days = insert(_days)
    days = days.on_conflict_do_update(
        index_elements=["business_date"],
        set_={name: _days.c[name] + days.excluded[name] for name in _AMOUNTS},
    )
    balances = insert(_balances)
    balances = balances.on_conflict_do_update(
        index_elements=["owner_public_id"],
        set_={"balance_cents": balances.excluded.balance_cents, "stamp": balances.excluded.stamp},
        where=balances.excluded.stamp > _balances.c.stamp,
    )
    tops = insert(_tops)
    new = tops.excluded
    tops = tops.on_conflict_do_update(
        index_elements=["bucket"],
        set_={
            "task_public_id": new.task_public_id,
            "reward_cents": new.reward_cents,
            "completed_at": new.completed_at,
        },
        # Completion.rank, in SQL: the higher reward, then the earlier time, then the id
        where=sa.tuple_(-new.reward_cents, new.completed_at, new.task_public_id)
        < sa.tuple_(-_tops.c.reward_cents, _tops.c.completed_at, _tops.c.task_public_id),
    )
    closed = insert(_closed).on_conflict_do_nothing(index_elements=["business_date"])
    return _Statements(tasks, days, balances, tops, closed)
