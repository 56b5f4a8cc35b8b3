"""The invariants of the books, checked against the database (``ates billing verify``).

Each check is one query that returns the rows breaking an invariant; an empty list of
problems means the books are sound. The Hypothesis test runs these after every step.
"""

from __future__ import annotations

import json
from collections import Counter

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.tables import outbox
from ates.services.billing.models import Account, ClosedDay, Entry, Task, Transaction

LIMIT = 20  # breaches listed per check


async def problems(session: AsyncSession) -> list[str]:
    """Every breach found, as one readable line each."""
    found: list[str] = []
    for check in (
        _unbalanced_transactions,
        _ledger_total,
        _legs_match_transactions,
        _cached_balances,
        _prices,
        _booked_twice,
        _payouts,
    ):
        found += await check(session)
    return found


async def _unbalanced_transactions(session: AsyncSession) -> list[str]:
    rows = await session.execute(
        sa.select(Transaction.public_id, sa.func.coalesce(sa.func.sum(Entry.amount_cents), 0))
        .outerjoin(Entry, Entry.transaction_id == Transaction.id)
        .group_by(Transaction.id, Transaction.public_id)
        .having(
            sa.or_(
                sa.func.coalesce(sa.func.sum(Entry.amount_cents), 0) != 0,
                sa.func.count(Entry.id) < 2,
            )
        )
        .limit(LIMIT)
    )
    return [
        f"transaction {tid}: legs sum to {total}, not 0 (or fewer than two legs)"
        for tid, total in rows.all()
    ]


async def _ledger_total(session: AsyncSession) -> list[str]:
    total = await session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Entry.amount_cents), 0)))
    orphans = await session.scalar(
        sa.select(sa.func.count())
        .select_from(Entry)
        .outerjoin(Transaction, Transaction.id == Entry.transaction_id)
        .where(Transaction.id.is_(None))
    )
    found = []
    if total:
        found.append(f"all entries sum to {total}, not 0")
    if orphans:
        found.append(f"{orphans} entries belong to no transaction")
    return found


async def _legs_match_transactions(session: AsyncSession) -> list[str]:
    """The owner's leg is the transaction's amount, with the sign of its kind, on its day."""
    signed = sa.case(
        (Transaction.kind == "reward", Transaction.amount_cents),
        else_=-Transaction.amount_cents,
    )
    owner_leg = (
        sa.select(sa.func.coalesce(sa.func.sum(Entry.amount_cents), 0))
        .where(
            Entry.transaction_id == Transaction.id,
            Entry.account_id == Transaction.owner_account_id,
        )
        .scalar_subquery()
    )
    wrong_day = (
        sa.select(Entry.id)
        .where(
            Entry.transaction_id == Transaction.id,
            Entry.business_date != Transaction.business_date,
        )
        .exists()
    )
    rows = await session.execute(
        sa.select(Transaction.public_id).where(sa.or_(owner_leg != signed, wrong_day)).limit(LIMIT)
    )
    return [f"transaction {tid}: its legs do not match its kind, amount or day" for (tid,) in rows]


async def _cached_balances(session: AsyncSession) -> list[str]:
    sums = (
        sa.select(Entry.account_id, sa.func.sum(Entry.amount_cents).label("cents"))
        .group_by(Entry.account_id)
        .subquery()
    )
    derived = sa.func.coalesce(sums.c.cents, 0)
    rows = await session.execute(
        sa.select(Account.public_id, Account.owner_name, Account.balance_cents, derived)
        .outerjoin(sums, sums.c.account_id == Account.id)
        .where(Account.balance_cents != derived)
        .limit(LIMIT)
    )
    return [
        f"account {pid} ({name}): cached balance {cached} but its entries sum to {real}"
        for pid, name, cached, real in rows.all()
    ]


async def _prices(session: AsyncSession) -> list[str]:
    """One price per task: one ``TaskPriced`` ever published, every fee and reward booked
    for a task at exactly that price."""
    found: list[str] = []
    announced = await session.scalar(
        sa.select(sa.func.count()).select_from(outbox).where(outbox.c.event_name == "TaskPriced")
    )
    tasks = await session.scalar(sa.select(sa.func.count()).select_from(Task))
    if (announced or 0) > (tasks or 0):  # only then is it worth reading the payloads
        priced: Counter[str] = Counter()
        rows = await session.execute(
            sa.select(outbox.c.payload).where(outbox.c.event_name == "TaskPriced")
        )
        for (payload,) in rows:
            priced[json.loads(payload)["data"]["task_public_id"]] += 1
        found += [f"task {task}: priced {n} times" for task, n in priced.items() if n > 1]
    booked_price = sa.case(
        (Transaction.kind == "reward", Task.reward_cents), else_=Task.assign_fee_cents
    )
    wrong = await session.execute(
        sa.select(Transaction.public_id, Task.public_id)
        .outerjoin(Task, Task.public_id == Transaction.task_public_id)
        .where(
            Transaction.kind.in_(("assign_fee", "reward")),
            sa.or_(Task.id.is_(None), Transaction.amount_cents != booked_price),
        )
        .limit(LIMIT)
    )
    found += [
        f"transaction {tid}: amount is not the price of task {task}" for tid, task in wrong.all()
    ]
    return found


async def _booked_twice(session: AsyncSession) -> list[str]:
    """No causing event booked twice; no task rewarded twice (unique keys back both)."""
    twice = await session.execute(
        sa.select(Transaction.idempotency_key, sa.func.count())
        .group_by(Transaction.idempotency_key)
        .having(sa.func.count() > 1)
        .limit(LIMIT)
    )
    rewards = await session.execute(
        sa.select(Transaction.task_public_id, sa.func.count())
        .where(Transaction.kind == "reward")
        .group_by(Transaction.task_public_id)
        .having(sa.func.count() > 1)
        .limit(LIMIT)
    )
    return [f"event {key} booked {n} times" for key, n in twice.all()] + [
        f"task {task} rewarded {n} times" for task, n in rewards.all()
    ]


async def _payouts(session: AsyncSession) -> list[str]:
    """Payouts only on closed days, at most one per person and day."""
    open_day = await session.execute(
        sa.select(Transaction.public_id, Transaction.business_date)
        .outerjoin(ClosedDay, ClosedDay.business_date == Transaction.business_date)
        .where(Transaction.kind == "payout", ClosedDay.business_date.is_(None))
        .limit(LIMIT)
    )
    twice = await session.execute(
        sa.select(Transaction.owner_account_id, Transaction.business_date, sa.func.count())
        .where(Transaction.kind == "payout")
        .group_by(Transaction.owner_account_id, Transaction.business_date)
        .having(sa.func.count() > 1)
        .limit(LIMIT)
    )
    return [f"payout {tid} on {day}, a day not closed" for tid, day in open_day.all()] + [
        f"account #{account} paid {n} times for {day}" for account, day, n in twice.all()
    ]
