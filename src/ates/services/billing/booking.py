"""Booking task events a run at a time: what the consumer hands billing in one batch.

A run of ``TaskCreated`` / ``TaskAssigned`` / ``TaskCompleted`` events is applied in two
steps. First every event is decided in memory, in delivery order, against a working set
read with a handful of queries (the tasks' prices and names, who was rewarded, which
events were booked, the people's accounts and balances, where the books stand): a price
drawn where there is none, a fee or a reward posted, a ``TaskPriced`` and a
``TransactionApplied`` emitted — exactly what applying the events one after the other
would do, balances after each posting included. Then the decisions are written with a few
multi-row statements. The ledger's rules do not change: every transaction is keyed by
its event id, every posting's legs sum to zero, a price is drawn once, a task is
rewarded once.

Nothing else writes these rows meanwhile: on SQLite the transaction holds the only write
lock; on PostgreSQL the consumer's per-service lock keeps other batches out and the books
row, read with a share lock, keeps a day close out. Should a write still find a row that
was not there when read, it raises, and the consumer applies the run again one event at
a time through the same code.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, assert_never

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ates.platform.consumer import Rejected
from ates.platform.events import Event
from ates.platform.uow import UnitOfWork
from ates.schemas import payload_of
from ates.schemas.billing import TaskPriced, TransactionApplied, as_kind
from ates.schemas.tasks import TaskAssigned, TaskCompleted, TaskCreated
from ates.services.billing import domain, ledger
from ates.services.billing.models import (
    COMPANY_ACCOUNT_ID,
    Account,
    Entry,
    Task,
    Transaction,
    new_id,
)

_tasks = sa.Table("tasks", Task.metadata)
_accounts = sa.Table("accounts", Account.metadata)
_transactions = sa.Table("transactions", Transaction.metadata)
_entries = sa.Table("entries", Entry.metadata)

# Built once: a statement's construction and cache key cost more than SQLite's answer.
_PRICES = sa.select(
    _tasks.c.public_id,
    _tasks.c.assign_fee_cents,
    _tasks.c.reward_cents,
    _tasks.c.title,
    _tasks.c.jira_id,
).where(_tasks.c.public_id.in_(sa.bindparam("tasks", expanding=True)))
_REWARDED = sa.select(_transactions.c.task_public_id).where(
    _transactions.c.kind == domain.Kind.REWARD.value,
    _transactions.c.task_public_id.in_(sa.bindparam("tasks", expanding=True)),
)
_BOOKED = sa.select(_transactions.c.idempotency_key).where(
    _transactions.c.idempotency_key.in_(sa.bindparam("keys", expanding=True))
)
_ACCOUNTS = sa.select(_accounts.c.id, _accounts.c.owner_public_id, _accounts.c.balance_cents).where(
    sa.or_(
        _accounts.c.owner_public_id.in_(sa.bindparam("owners", expanding=True)),
        _accounts.c.id == COMPANY_ACCOUNT_ID,
    )
)
_INSERT_PRICE = sa.insert(_tasks)
_NAME_TASK = (
    sa.update(_tasks)
    .where(_tasks.c.public_id == sa.bindparam("task"))
    .values(title=sa.bindparam("title"), jira_id=sa.bindparam("jira_id"))
)
_INSERT_TRANSACTIONS = sa.insert(_transactions).returning(
    _transactions.c.id, sort_by_parameter_order=True
)
_INSERT_ENTRIES = sa.insert(_entries)
_SET_BALANCE = (
    sa.update(_accounts)
    .where(
        _accounts.c.id == sa.bindparam("account"), _accounts.c.balance_cents == sa.bindparam("was")
    )
    .values(balance_cents=sa.bindparam("now"))
)


@dataclass(slots=True)
class _Task:
    price: domain.Price
    title: str | None = None
    jira_id: str | None = None


@dataclass(slots=True)
class _Posting:
    key: str
    posting: domain.Posting
    reason: domain.Reason
    task_public_id: str
    business_date: date
    booked_late_from: date | None
    description: str
    public_id: str
    applied_at: datetime


@dataclass
class _Run:
    """The working set of one run and the decisions taken on it, not yet written."""

    books: ledger.BooksState
    tasks: dict[str, _Task]
    rewarded: set[str]
    booked: set[str]
    account_ids: dict[str, int]
    balances: dict[int, int]  # account id -> balance as read
    new_prices: list[dict[str, Any]] = field(default_factory=list)
    names: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    postings: list[_Posting] = field(default_factory=list)
    moved: dict[int, int] = field(default_factory=dict)  # account id -> balance now
    last_applied: datetime | None = None

    def applied_at(self) -> datetime:
        """The moment of the next posting, strictly after the previous one: readers order
        a person's movements by it (analytics keeps the balance after the latest), as
        they did when each event took its own transaction."""
        now = datetime.now(UTC)
        if self.last_applied is not None and now <= self.last_applied:
            now = self.last_applied + timedelta(microseconds=1)
        self.last_applied = now
        return now


TaskEvent = TaskCreated | TaskAssigned | TaskCompleted


def task_event(event: Event) -> TaskEvent:
    """The typed payload of a task event (a v1 ``TaskCreated`` arrives upcast to v2)."""
    payload = payload_of(event)
    if not isinstance(payload, TaskEvent):
        raise ValueError(f"not a task event: {event.event_name}")
    return payload


async def book_task_events(events: Sequence[Event], uow: UnitOfWork, rng: random.Random) -> None:
    """Apply a run of task events in order (see the module's docstring)."""
    payloads = [task_event(event) for event in events]
    connection = await uow.session.connection()
    run = await _read(connection, uow, events, payloads)
    now = datetime.now(UTC)
    for event, payload in zip(events, payloads, strict=True):
        match payload:
            case TaskCreated():
                task = await _priced(run, uow, event, payload.public_id, rng, now)
                task.title, task.jira_id = payload.title, payload.jira_id
                run.names[payload.public_id] = (task.title, task.jira_id)
            case TaskAssigned():
                task_id = payload.task_public_id
                task = await _priced(run, uow, event, task_id, rng, now)
                shuffled = payload.reason == "shuffle"
                await _post(
                    run,
                    uow,
                    event,
                    domain.fee_posting(payload.assignee_public_id, task.price),
                    domain.Reason.SHUFFLED if shuffled else domain.Reason.ASSIGNED,
                    task_id,
                    task,
                    event.event_time,  # the moment tasks assigned it, not when we heard of it
                )
            case TaskCompleted():
                task_id = payload.task_public_id
                completed_at = _moment(payload.completed_at, "completed_at")
                task = await _priced(run, uow, event, task_id, rng, now)
                if str(event.event_id) in run.booked:
                    continue
                if task_id in run.rewarded:
                    # A task completes once (T6): a second completion under another event
                    # id is a producer's bug to inspect, not money to pay again.
                    raise Rejected(f"task {task_id} was already rewarded")
                run.rewarded.add(task_id)
                await _post(
                    run,
                    uow,
                    event,
                    domain.reward_posting(payload.assignee_public_id, task.price),
                    domain.Reason.COMPLETED,
                    task_id,
                    task,
                    completed_at,
                )
            case _:
                assert_never(payload)
    await _write(connection, run)


# --- reading the working set ----------------------------------------------------------------


async def _read(
    connection: AsyncConnection,
    uow: UnitOfWork,
    events: Sequence[Event],
    payloads: Sequence[TaskEvent],
) -> _Run:
    task_ids = list(
        {p.public_id if isinstance(p, TaskCreated) else p.task_public_id for p in payloads}
    )
    owners = {p.assignee_public_id for p in payloads if not isinstance(p, TaskCreated)}
    books = await ledger.books(uow.session)  # a share lock: no day closes meanwhile
    tasks = {
        row.public_id: _Task(
            domain.Price(row.assign_fee_cents, row.reward_cents), row.title, row.jira_id
        )
        for row in await connection.execute(_PRICES, {"tasks": task_ids})
    }
    rewarded = set((await connection.execute(_REWARDED, {"tasks": task_ids})).scalars())
    keys = [str(e.event_id) for e in events]
    booked = set((await connection.execute(_BOOKED, {"keys": keys})).scalars())
    account_ids, balances = await _accounts_of(connection, owners)
    return _Run(books, tasks, rewarded, booked, account_ids, balances)


async def _accounts_of(
    connection: AsyncConnection, owners: set[str]
) -> tuple[dict[str, int], dict[int, int]]:
    """The accounts of ``owners`` (opened now for people not heard of yet, B2) and of the
    company, with their balances."""
    rows = list(await connection.execute(_ACCOUNTS, {"owners": list(owners)}))
    missing = owners - {row.owner_public_id for row in rows}
    if missing:
        await connection.execute(
            ledger.insert_ignoring_duplicates(connection.dialect.name, Account),
            [
                {
                    "public_id": new_id(),
                    "kind": "person",
                    "owner_public_id": owner,
                    "active": True,
                    "balance_cents": 0,
                }
                for owner in sorted(missing)
            ],
        )
        rows += list(await connection.execute(_ACCOUNTS, {"owners": list(missing)}))
    account_ids = {row.owner_public_id: row.id for row in rows if row.owner_public_id}
    account_ids[domain.COMPANY] = COMPANY_ACCOUNT_ID
    return account_ids, {row.id: row.balance_cents for row in rows}


# --- deciding, event by event ----------------------------------------------------------------


async def _priced(
    run: _Run,
    uow: UnitOfWork,
    event: Event,
    task_public_id: str,
    rng: random.Random,
    now: datetime,
) -> _Task:
    """The task with its price, drawn and announced the first time billing hears of it
    (the announcement continues the trace of ``event``, which made billing hear of it)."""
    task = run.tasks.get(task_public_id)
    if task is not None:
        return task
    price = domain.draw_price(rng)
    task = run.tasks[task_public_id] = _Task(price)
    run.new_prices.append(
        {
            "public_id": task_public_id,
            "assign_fee_cents": price.assign_fee_cents,
            "reward_cents": price.reward_cents,
            "priced_at": now,
        }
    )
    await uow.emit(
        TaskPriced(task_public_id, price.assign_fee_cents, price.reward_cents), caused_by=event
    )
    return task


async def _post(
    run: _Run,
    uow: UnitOfWork,
    event: Event,
    posting: domain.Posting,
    reason: domain.Reason,
    task_public_id: str,
    task: _Task,
    happened_at: datetime,
) -> None:
    key = str(event.event_id)
    if key in run.booked:
        return  # booked before, even through another inbox: nothing moves twice
    run.booked.add(key)
    natural = run.books.day_of(happened_at)
    day = domain.booking_date(natural, run.books.closed_through)
    late_from = natural if day != natural else None
    label = domain.task_label(task.title, task.jira_id, task_public_id)
    description = domain.describe(
        reason,
        amount_cents=posting.amount_cents,
        business_date=day,
        task=label,
        booked_late_from=late_from,
    )
    for leg in posting.legs:
        account = run.account_ids[leg.account]
        was = run.moved.get(account, run.balances[account])
        run.moved[account] = was + leg.amount_cents
    booked = _Posting(
        key,
        posting,
        reason,
        task_public_id,
        day,
        late_from,
        description,
        new_id(),
        run.applied_at(),
    )
    run.postings.append(booked)
    await uow.emit(
        TransactionApplied(
            transaction_public_id=booked.public_id,
            owner_public_id=posting.owner,
            kind=as_kind(posting.kind),
            debit_cents=posting.debit_cents,
            credit_cents=posting.credit_cents,
            balance_after_cents=run.moved[run.account_ids[posting.owner]],
            task_public_id=task_public_id,
            business_date=day.isoformat(),
            applied_at=booked.applied_at.isoformat().replace("+00:00", "Z"),
            description=description,
        ),
        caused_by=event,
    )


def _moment(value: str, field_name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"{field_name}: not an RFC 3339 date-time: {value!r}") from None
    if moment.tzinfo is None:
        raise Rejected(f"{field_name}: a date-time must carry its time zone: {value!r}")
    return moment


# --- writing the decisions ---------------------------------------------------------------------


async def _write(connection: AsyncConnection, run: _Run) -> None:
    if run.new_prices:  # a price someone else inserted meanwhile breaks the unique key
        await connection.execute(_INSERT_PRICE, run.new_prices)
    if run.names:
        await connection.execute(
            _NAME_TASK,
            [
                {"task": t, "title": title, "jira_id": jira}
                for t, (title, jira) in run.names.items()
            ],
        )
    if not run.postings:
        return
    ids = (
        (
            await connection.execute(
                _INSERT_TRANSACTIONS,
                [
                    {
                        "public_id": p.public_id,
                        "idempotency_key": p.key,
                        "kind": p.posting.kind.value,
                        "reason": p.reason.value,
                        "owner_account_id": run.account_ids[p.posting.owner],
                        "amount_cents": p.posting.amount_cents,
                        "task_public_id": p.task_public_id,
                        "business_date": p.business_date,
                        "booked_late_from": p.booked_late_from,
                        "description": p.description,
                        "applied_at": p.applied_at,
                    }
                    for p in run.postings
                ],
            )
        )
        .scalars()
        .all()
    )
    await connection.execute(
        _INSERT_ENTRIES,
        [
            {
                "transaction_id": transaction_id,
                "account_id": run.account_ids[leg.account],
                "amount_cents": leg.amount_cents,
                "business_date": p.business_date,
            }
            for transaction_id, p in zip(ids, run.postings, strict=True)
            for leg in p.posting.legs
        ],
    )
    await _set_balances(connection, run)


async def _set_balances(connection: AsyncConnection, run: _Run) -> None:
    """Each balance once, in account-id order (two writers never wait on each other in a
    cycle); the guard on the old value turns a writer we did not see into an error."""
    changes = [
        {"account": account, "was": run.balances[account], "now": balance}
        for account, balance in sorted(run.moved.items())
    ]
    if connection.dialect.supports_sane_multi_rowcount:  # SQLite: one statement for all
        updated = (await connection.execute(_SET_BALANCE, changes)).rowcount
    else:  # asyncpg reports no row count for many rows at once
        updated = 0
        for change in changes:
            updated += (await connection.execute(_SET_BALANCE, change)).rowcount
    if updated != len(changes):
        raise RuntimeError(f"{len(changes) - updated} balances moved under us; another writer?")
