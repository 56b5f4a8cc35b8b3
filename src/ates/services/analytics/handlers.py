"""Event handlers of analytics: every projection is changed here, and only from events.

Each handler is safe in any order and under redelivery: the inbox drops duplicates, sums
only add, "latest" values carry a stamp and keep the newest, and the most expensive task
of a bucket is a maximum under a total order (``domain.Completion.rank``).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import case, delete, func, select, tuple_

from ates.platform.consumer import Handler, Rejected
from ates.platform.events import Event
from ates.platform.uow import UnitOfWork
from ates.services.analytics.domain import (
    PersonFacts,
    PersonState,
    bucket_of,
    earnings_effect,
    merge_person,
    parse_instant,
    stamp,
)
from ates.services.analytics.models import (
    PROJECTIONS,
    Balance,
    ClosedDay,
    DailyEarnings,
    Person,
    Task,
    TopCompletion,
)
from ates.services.analytics.upsert import upsert

# --- people -----------------------------------------------------------------------------


async def _merge_person(uow: UnitOfWork, public_id: str, facts: PersonFacts) -> None:
    row = await uow.session.get(Person, public_id, with_for_update=True)
    if row is None:
        row = Person(public_id=public_id)
        uow.session.add(row)
        state = PersonState()
    else:
        state = PersonState(
            username=row.username,
            email=row.email,
            full_name=row.full_name,
            role=row.role,
            active=row.active,
            profile_stamp=row.profile_stamp,
            role_stamp=row.role_stamp,
            active_stamp=row.active_stamp,
        )
    merged = merge_person(state, facts)
    row.username, row.email, row.full_name = merged.username, merged.email, merged.full_name
    row.role, row.active = merged.role, merged.active
    row.profile_stamp = merged.profile_stamp
    row.role_stamp, row.active_stamp = merged.role_stamp, merged.active_stamp


def _stamp(event: Event) -> str:
    return stamp(event.event_time, str(event.event_id))


async def on_account_created(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    facts = PersonFacts(
        stamp=_stamp(event),
        username=data["username"],
        email=data["email"],
        full_name=data["full_name"],
        role=data["role"],
        active=True,
    )
    await _merge_person(uow, data["public_id"], facts)


async def on_account_updated(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    facts = PersonFacts(
        stamp=_stamp(event),
        username=data["username"],
        email=data["email"],
        full_name=data["full_name"],
        role=data["role"],
        active=data["active"],
    )
    await _merge_person(uow, data["public_id"], facts)


async def on_account_role_changed(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    await _merge_person(uow, data["public_id"], PersonFacts(_stamp(event), role=data["new_role"]))


async def on_account_deactivated(event: Event, uow: UnitOfWork) -> None:
    await _merge_person(uow, event.data["public_id"], PersonFacts(_stamp(event), active=False))


# --- tasks ------------------------------------------------------------------------------


async def on_task_created(event: Event, uow: UnitOfWork) -> None:
    data = event.data  # v2 (v1 is upcast by the platform: jira id split out of the title)
    await upsert(
        uow.session,
        Task,
        {"public_id": data["public_id"], "title": data["title"], "jira_id": data["jira_id"]},
        keys=["public_id"],
        update=lambda new: {"title": new.title, "jira_id": new.jira_id},
    )


async def on_task_assigned(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    current = Task.assignee_stamp
    await upsert(
        uow.session,
        Task,
        {
            "public_id": data["task_public_id"],
            "assignments": 1,
            "assignee_public_id": data["assignee_public_id"],
            "assignee_stamp": _stamp(event),
        },
        keys=["public_id"],
        update=lambda new: {
            "assignments": Task.assignments + 1,
            "assignee_public_id": case(
                (new.assignee_stamp > current, new.assignee_public_id),
                else_=Task.assignee_public_id,
            ),
            "assignee_stamp": case(
                (new.assignee_stamp > current, new.assignee_stamp), else_=current
            ),
        },
    )


async def on_task_completed(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    task_id = data["task_public_id"]
    completed_at = parse_instant(data["completed_at"])
    await upsert(
        uow.session,
        Task,
        {
            "public_id": task_id,
            "completed_at": completed_at,
            "completed_by": data["assignee_public_id"],
        },
        keys=["public_id"],
        update=lambda new: {
            # a task is completed once; the first completion recorded stays
            "completed_at": func.coalesce(Task.completed_at, new.completed_at),
            "completed_by": func.coalesce(Task.completed_by, new.completed_by),
        },
    )
    task = await _task(uow, task_id)
    if task.completed_at != completed_at:
        raise Rejected(
            f"task {task_id} completed at {completed_at.isoformat()} "
            f"but already recorded as completed at {task.completed_at}"
        )
    await _rank_completion(uow, task)


async def on_task_priced(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    task_id = data["task_public_id"]
    await upsert(
        uow.session,
        Task,
        {
            "public_id": task_id,
            "assign_fee_cents": data["assign_fee_cents"],
            "reward_cents": data["reward_cents"],
        },
        keys=["public_id"],
        update=lambda new: {
            # DESIGN B3: a price is set once and never changes
            "assign_fee_cents": func.coalesce(Task.assign_fee_cents, new.assign_fee_cents),
            "reward_cents": func.coalesce(Task.reward_cents, new.reward_cents),
        },
    )
    task = await _task(uow, task_id)
    if (task.assign_fee_cents, task.reward_cents) != (
        data["assign_fee_cents"],
        data["reward_cents"],
    ):
        raise Rejected(f"task {task_id} priced twice with different prices")
    await _rank_completion(uow, task)


async def _task(uow: UnitOfWork, public_id: str) -> Task:
    task = await uow.session.scalar(
        select(Task).where(Task.public_id == public_id).execution_options(populate_existing=True)
    )
    assert task is not None  # upserted just before, in this transaction
    return task


async def _rank_completion(uow: UnitOfWork, task: Task) -> None:
    """Once a task is both completed and priced, it competes for its bucket's top spot.
    Idempotent: ranking the same task twice changes nothing."""
    if task.completed_at is None or task.reward_cents is None:
        return
    await upsert(
        uow.session,
        TopCompletion,
        {
            "bucket": bucket_of(task.completed_at),
            "task_public_id": task.public_id,
            "reward_cents": task.reward_cents,
            "completed_at": task.completed_at,
        },
        keys=["bucket"],
        update=lambda new: {
            "task_public_id": new.task_public_id,
            "reward_cents": new.reward_cents,
            "completed_at": new.completed_at,
        },
        # Completion.rank, in SQL: the higher reward, then the earlier time, then the id
        where=lambda new: (
            tuple_(-new.reward_cents, new.completed_at, new.task_public_id)
            < tuple_(
                -TopCompletion.reward_cents,
                TopCompletion.completed_at,
                TopCompletion.task_public_id,
            )
        ),
    )


# --- money ------------------------------------------------------------------------------


async def _add_to_day(uow: UnitOfWork, day: date, **amounts: int) -> None:
    await upsert(
        uow.session,
        DailyEarnings,
        {
            "fees_cents": 0,
            "rewards_cents": 0,
            "payouts_cents": 0,
            "fee_count": 0,
            "reward_count": 0,
            "business_date": day,
            **amounts,
        },
        keys=["business_date"],
        update=lambda new: {name: getattr(DailyEarnings, name) + new[name] for name in amounts},
    )


async def on_transaction_applied(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    kind = data["kind"]
    fees, rewards = earnings_effect(kind, data["debit_cents"], data["credit_cents"])
    if kind in ("assign_fee", "reward"):
        await _add_to_day(
            uow,
            date.fromisoformat(data["business_date"]),
            fees_cents=fees,
            rewards_cents=rewards,
            fee_count=int(kind == "assign_fee"),
            reward_count=int(kind == "reward"),
        )
    await upsert(
        uow.session,
        Balance,
        {
            "owner_public_id": data["owner_public_id"],
            "balance_cents": data["balance_after_cents"],
            "stamp": stamp(parse_instant(data["applied_at"]), data["transaction_public_id"]),
        },
        keys=["owner_public_id"],
        update=lambda new: {"balance_cents": new.balance_cents, "stamp": new.stamp},
        where=lambda new: new.stamp > Balance.stamp,
    )


async def on_payout_made(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    await _add_to_day(
        uow, date.fromisoformat(data["business_date"]), payouts_cents=data["amount_cents"]
    )


async def on_day_closed(event: Event, uow: UnitOfWork) -> None:
    await upsert(
        uow.session,
        ClosedDay,
        {
            "business_date": date.fromisoformat(event.data["business_date"]),
            "recorded_at": event.event_time,
        },
        keys=["business_date"],
    )


# --- replay -----------------------------------------------------------------------------


async def reset_projections(uow: UnitOfWork) -> None:
    """Forget everything analytics knows (``ates replay`` rebuilds it from the log)."""
    for model in PROJECTIONS:
        await uow.session.execute(delete(model))


# Every event of the domains analytics reads, so that a replay sees the whole log.
HANDLERS: dict[str, Handler] = {
    "AccountCreated": on_account_created,
    "AccountUpdated": on_account_updated,
    "AccountRoleChanged": on_account_role_changed,
    "AccountDeactivated": on_account_deactivated,
    "TaskCreated": on_task_created,
    "TaskAssigned": on_task_assigned,
    "TaskCompleted": on_task_completed,
    "TaskPriced": on_task_priced,
    "TransactionApplied": on_transaction_applied,
    "PayoutMade": on_payout_made,
    "DayClosed": on_day_closed,
}
