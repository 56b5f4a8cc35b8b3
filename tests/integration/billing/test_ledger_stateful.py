"""Random histories of task events against the real billing database (Hypothesis).

The machine plays the tasks service: it creates, assigns, shuffles and completes tasks,
and lets the "broker" deliver the resulting events late, out of order, twice, or again
through a fresh inbox (a replay). Between events it moves the clock (across midnights and
a daylight-saving change of the business zone) and closes days, sometimes in the future.

After every step the ``ates billing verify`` checks must find nothing, and an independent
model, computed from the events alone, must agree with the books: each person's balance,
each close's payouts, and each day's management earnings by the course's formula
``(sum(completed task amount) + sum(created task fee)) * -1``.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ates.platform import migrations
from ates.platform.broker import Ack
from ates.platform.db import Database
from ates.platform.events import Event
from ates.services.billing.domain import DayRuleError
from tests.integration.billing import events as ev
from tests.integration.billing.books import Books

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("America/New_York")  # clocks jump forward on 2026-03-08
START = datetime(2026, 3, 6, 14, 0, tzinfo=UTC)
WORKERS = [str(uuid.UUID(int=n)) for n in (1, 2, 3)]
T = TypeVar("T")


@cache
def _template() -> Path:
    """One migrated database, copied for every example (Alembic runs once)."""
    path = Path(tempfile.mkdtemp(prefix="billing-stateful-")) / "template.db"

    async def _migrate() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await migrations.upgrade("billing", db)
        await db.dispose()

    asyncio.run(_migrate())
    return path


@dataclass
class ModelTask:
    assignee: str | None = None
    done: bool = False


@dataclass(frozen=True)
class Booked:
    """A movement as the model expects it: who, on which day, how much (signed)."""

    worker: str
    day: date
    cents: int
    kind: str


class BillingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.Runner()
        self.folder = Path(tempfile.mkdtemp(prefix="billing-run-"))
        shutil.copyfile(_template(), self.folder / "billing.db")
        self.db = Database(f"sqlite+aiosqlite:///{self.folder / 'billing.db'}")
        self.now = START
        self.tasks: dict[str, ModelTask] = {}
        self.pending: list[Event] = []
        self.delivered: list[Event] = []
        self.movements: list[Booked] = []
        self.prices: dict[str, tuple[int, int]] = {}
        self.closed_through: date | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coroutine)

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @initialize(seed=st.integers(0, 2**32 - 1))
    def open_books(self, seed: int) -> None:
        self.books = Books(self.db, random.Random(seed))
        self.replay = Books(self.db, random.Random(seed + 1), inbox="billing-replay")
        self.run(self.books.set_timezone(str(ZONE)))

    # --- the tasks service's side: events happen ---------------------------------------

    @rule(worker=st.sampled_from(WORKERS), legacy=st.booleans())
    def create_task(self, worker: str, legacy: bool) -> None:
        task = str(uuid.UUID(int=1000 + len(self.tasks)))  # reproducible when shrinking
        self.tasks[task] = ModelTask(assignee=worker)
        make = ev.task_created_v1 if legacy else ev.task_created
        self.pending.append(make(task, at=self.now))
        self.pending.append(ev.task_assigned(task, worker, at=self.now))

    def _open_tasks(self) -> list[str]:
        return [t for t, m in self.tasks.items() if not m.done]

    @precondition(lambda self: self._open_tasks())
    @rule(data=st.data(), worker=st.sampled_from(WORKERS))
    def shuffle(self, data: st.DataObject, worker: str) -> None:
        task = data.draw(st.sampled_from(self._open_tasks()))
        previous = self.tasks[task].assignee
        self.tasks[task].assignee = worker
        self.pending.append(
            ev.task_assigned(task, worker, reason="shuffle", previous=previous, at=self.now)
        )

    @precondition(lambda self: self._open_tasks())
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        task = data.draw(st.sampled_from(self._open_tasks()))
        model = self.tasks[task]
        model.done = True
        assert model.assignee is not None
        self.pending.append(ev.task_completed(task, model.assignee, at=self.now))

    @rule(hours=st.integers(1, 30))
    def time_passes(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    # --- the broker's side: deliveries in any order, duplicates, replays ---------------

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        event = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        assert self.run(self.books.deliver(event)) == Ack()
        self.delivered.append(event)
        self._book_in_model(event)

    @precondition(lambda self: self.delivered)
    @rule(data=st.data(), fresh_inbox=st.booleans())
    def deliver_again(self, data: st.DataObject, fresh_inbox: bool) -> None:
        event = data.draw(st.sampled_from(self.delivered))
        books = self.replay if fresh_inbox else self.books
        assert self.run(books.deliver(event, attempt=2)) == Ack()

    # --- closing days ------------------------------------------------------------------

    def _today(self) -> date:
        return self.now.astimezone(ZONE).date()

    @rule(days_back=st.integers(0, 3))
    def close_day(self, days_back: int) -> None:
        target = self._today() - timedelta(days=days_back)
        result = self.run(self.books.close(target, now=self.now))
        expected = self._close_in_model(target)
        if expected is None:
            assert not result.newly_closed
        else:
            assert result.newly_closed
            got = sorted(
                (p.business_date, p.owner_public_id, p.amount_cents) for p in result.payouts
            )
            assert got == expected

    @rule(days_ahead=st.integers(1, 3))
    def close_a_future_day(self, days_ahead: int) -> None:
        try:
            self.run(self.books.close(self._today() + timedelta(days=days_ahead), now=self.now))
        except DayRuleError:
            return
        raise AssertionError("a future day was closed")

    # --- the model -----------------------------------------------------------------------

    def _booking_day(self, happened_at: datetime) -> date:
        natural = happened_at.astimezone(ZONE).date()
        if self.closed_through is None or natural > self.closed_through:
            return natural
        return self.closed_through + timedelta(days=1)

    def _price(self, task: str) -> tuple[int, int]:
        price = self.run(self.books.price(task))
        assert self.prices.setdefault(task, price) == price, "a price changed"
        return price

    def _book_in_model(self, event: Event) -> None:
        data = event.data
        if event.event_name == "TaskAssigned":
            fee, _ = self._price(data["task_public_id"])
            day = self._booking_day(event.event_time)
            self.movements.append(Booked(data["assignee_public_id"], day, -fee, "fee"))
        elif event.event_name == "TaskCompleted":
            _, reward = self._price(data["task_public_id"])
            completed_at = datetime.fromisoformat(data["completed_at"].replace("Z", "+00:00"))
            day = self._booking_day(completed_at)
            self.movements.append(Booked(data["assignee_public_id"], day, reward, "reward"))

    def _close_in_model(self, target: date) -> list[tuple[date, str, int]] | None:
        """Payouts of every day up to ``target`` not closed yet (by the rules of B7, days
        close in order), or None if it was closed already."""
        if self.closed_through is not None and target <= self.closed_through:
            return None
        if self.closed_through is not None:
            day = self.closed_through + timedelta(days=1)
        else:
            day = min([m.day for m in self.movements] + [target])
        payouts: list[tuple[date, str, int]] = []
        while day <= target:
            for worker in WORKERS:
                balance = sum(
                    m.cents for m in self.movements if m.worker == worker and m.day <= day
                )
                if balance > 0:
                    self.movements.append(Booked(worker, day, -balance, "payout"))
                    payouts.append((day, worker, balance))
            day += timedelta(days=1)
        self.closed_through = target
        return sorted(payouts)

    # --- after every step --------------------------------------------------------------

    @invariant()
    def the_books_verify(self) -> None:
        assert self.run(self.books.problems()) == []

    @invariant()
    def balances_match_the_model(self) -> None:
        for worker in WORKERS:
            expected = sum(m.cents for m in self.movements if m.worker == worker)
            assert self.run(self.books.balance(worker)) == expected, worker

    @invariant()
    def management_earnings_follow_the_course_formula(self) -> None:
        completed: dict[date, int] = defaultdict(int)  # rewards, from the worker's side
        fees: dict[date, int] = defaultdict(int)  # fees, negative from the worker's side
        for m in self.movements:
            if m.kind == "reward":
                completed[m.day] += m.cents
            elif m.kind == "fee":
                fees[m.day] += m.cents
        days = sorted(set(completed) | set(fees))
        if not days:
            return
        expected = {d: (completed[d] + fees[d]) * -1 for d in days}
        assert self.run(self.books.earnings(*days)) == expected


BillingMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_histories_keep_the_books_right = BillingMachine.TestCase
