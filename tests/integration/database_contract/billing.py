"""Billing's books with two "processes" (two engines) on one database at once: a day is
paid once, an event is booked once, a task is priced once, no movement slips into a
closing day (nor is one being booked left out of its pay), and the ledger refuses to be
changed."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from ates.platform import migrations
from ates.platform.broker import Ack, Retry
from ates.platform.consumer import Batched
from ates.platform.db import Database
from ates.platform.events import Event
from ates.platform.uow import UnitOfWork
from ates.services.billing.consumers import make_handlers
from ates.services.billing.models import ClosedDay, Entry, Transaction
from tests.integration.billing import events as ev
from tests.integration.billing.books import Books
from tests.integration.database_contract.base import DatabaseBase, LockWatch
from tests.support import eventually

MONDAY = date(2026, 3, 2)
NOON = datetime(2026, 3, 2, 12, tzinfo=UTC)
EVENING = datetime(2026, 3, 2, 23, tzinfo=UTC)


async def deliver_until_done(books: Books, event: Event) -> None:
    """As the broker would: a delivery that lost a race is retried, then skipped or
    applied."""
    for attempt in range(1, 6):
        outcome = await books.deliver(event, attempt)
        if outcome == Ack():
            return
        assert isinstance(outcome, Retry)
    raise AssertionError(f"{event.event_name} never applied")


class BillingContract(DatabaseBase):
    @pytest.fixture
    async def pair(self, database_url: str) -> AsyncIterator[tuple[Books, Books]]:
        """Two processes of billing on one database, each with its own engine."""
        first, second = Database(database_url), Database(database_url)
        await migrations.upgrade("billing", first)
        try:
            yield Books(first, random.Random(1)), Books(second, random.Random(2))
        finally:
            await first.dispose()
            await second.dispose()

    async def test_people_accounts_come_after_the_system_accounts(
        self, pair: tuple[Books, Books]
    ) -> None:
        books, _ = pair
        worker = ev.new_id()
        await books.apply(ev.account_created(worker))
        account = await books.account(worker)
        assert account is not None and account.id > 2

    async def test_the_ledger_is_append_only(self, pair: tuple[Books, Books]) -> None:
        books, _ = pair
        await books.apply(ev.task_assigned(ev.new_id(), ev.new_id(), at=NOON))
        for statement in (sa.update(Entry).values(amount_cents=1), sa.delete(Transaction)):
            async with books.db.sessions() as session, session.begin():
                with pytest.raises(DBAPIError, match="immutable"):
                    await session.execute(statement)

    async def test_two_processes_closing_one_day_pay_once(self, pair: tuple[Books, Books]) -> None:
        books, other = pair
        worker, task = ev.new_id(), ev.new_id()
        await books.apply(ev.task_assigned(task, worker, at=NOON))
        await books.apply(ev.task_completed(task, worker, at=NOON))
        earned = await books.balance(worker)
        now = datetime(2026, 3, 3, 0, 5, tzinfo=UTC)
        results = await asyncio.gather(books.close(MONDAY, now=now), other.close(MONDAY, now=now))
        assert sorted(r.newly_closed for r in results) == [False, True]
        assert all([p.amount_cents for p in r.payouts] == [earned] for r in results)
        assert await books.balance(worker) == 0
        assert await books.problems() == []

    async def test_one_event_in_two_processes_is_booked_once(
        self, pair: tuple[Books, Books]
    ) -> None:
        books, other = pair
        # two inboxes, so only the ledger's own idempotency key stands between us and a
        # double charge (as with a replay running beside the live consumer)
        replay = Books(other.db, random.Random(3), inbox="billing-replay")
        worker = ev.new_id()
        tasks = [ev.new_id() for _ in range(10)]
        events = [ev.task_assigned(task, worker, at=NOON) for task in tasks]
        await asyncio.gather(
            *(deliver_until_done(books, e) for e in events),
            *(deliver_until_done(replay, e) for e in events),
        )
        fees = [(await books.price(task))[0] for task in tasks]
        assert await books.balance(worker) == -sum(fees)
        assert len(await books.transactions()) == 10
        assert await books.problems() == []

    async def test_a_task_heard_of_twice_at_once_is_priced_once(
        self, pair: tuple[Books, Books]
    ) -> None:
        books, other = pair
        worker = ev.new_id()
        tasks = [ev.new_id() for _ in range(10)]
        await asyncio.gather(
            *(deliver_until_done(books, ev.task_created(task)) for task in tasks),
            *(deliver_until_done(other, ev.task_assigned(task, worker, at=NOON)) for task in tasks),
        )
        problems = await books.problems()
        assert problems == []  # includes: one TaskPriced per task, fees at that price

    async def test_movements_racing_a_close_land_on_an_open_day(
        self, pair: tuple[Books, Books]
    ) -> None:
        books, other = pair
        workers = [ev.new_id() for _ in range(3)]
        first = [ev.task_assigned(ev.new_id(), workers[n % 3], at=NOON) for n in range(6)]
        for event in first:
            await books.apply(event)
        late = []
        for n in range(30):
            task = ev.new_id()
            late += [
                ev.task_assigned(task, workers[n % 3], at=EVENING),
                ev.task_completed(task, workers[n % 3], at=EVENING),
            ]
        now = datetime(2026, 3, 3, 0, 1, tzinfo=UTC)
        await asyncio.gather(
            other.close(MONDAY, now=now), *(deliver_until_done(books, e) for e in late)
        )
        async with books.db.reader() as session:
            closed = await session.get(ClosedDay, MONDAY)
            assert closed is not None
            # every movement on Monday was committed before the close paid Monday out:
            # Monday's balances after the close are all <= 0
            through_monday = await session.execute(
                sa.select(Entry.account_id, sa.func.sum(Entry.amount_cents))
                .where(Entry.business_date <= MONDAY, Entry.account_id > 2)
                .group_by(Entry.account_id)
            )
            assert all(cents <= 0 for _, cents in through_monday.all())
        assert await books.problems() == []

    async def test_a_close_waits_for_a_booking_in_flight_and_pays_its_movement(
        self, pair: tuple[Books, Books], lock_watch: LockWatch
    ) -> None:
        """What the close's update lock on the books row is for (PostgreSQL; on SQLite the
        one writer does it). A booking has read the books under a share lock and written
        a reward on Monday, its transaction still open, when a close of Monday starts. The
        close must wait for it and pay Monday with the reward. Without the lock it reads
        Monday's balances without the reward (not committed yet), pays what it saw, and
        closes Monday; the reward then commits onto a closed day and is never paid."""
        books, other = pair
        lock_watch.watch(other.db)
        worker, task = ev.new_id(), ev.new_id()
        await books.apply(ev.task_assigned(task, worker, at=NOON))
        fee, reward = await books.price(task)
        assert reward > fee, "the test wants a balance to pay once the reward is in"

        inside, go_on = asyncio.Event(), asyncio.Event()
        handlers = make_handlers(random.Random(3))
        task_events = handlers["TaskCompleted"]
        assert isinstance(task_events, Batched)

        async def booked_then_held(events: Sequence[Event], uow: UnitOfWork) -> None:
            await task_events.apply(events, uow)
            inside.set()
            await go_on.wait()  # the reward is written; its transaction stays open

        held = Books(
            books.db,
            random.Random(3),
            handlers={**handlers, "TaskCompleted": Batched(booked_then_held)},
        )
        booking = asyncio.create_task(held.deliver(ev.task_completed(task, worker, at=EVENING)))
        try:
            await asyncio.wait_for(inside.wait(), 10)
            closing = asyncio.create_task(
                other.close(MONDAY, now=datetime(2026, 3, 3, 0, 5, tzinfo=UTC))
            )
            await eventually(lock_watch.waiting)  # the close waits for the booking
        finally:
            go_on.set()  # a failed wait must not leave the booking's transaction open
        assert await booking == Ack()
        closed = await closing
        assert closed.newly_closed
        paid = [p.amount_cents for p in closed.payouts]
        assert paid == [reward - fee], (
            f"the close paid {paid} for Monday without the reward booked on Monday: "
            f"{await books.balance(worker)} cents stay on a closed day"
        )
        assert await books.balance(worker) == 0
        assert await books.problems() == []
