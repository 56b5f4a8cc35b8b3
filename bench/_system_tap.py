"""The benchmark's tap on billing's events, and the books it keeps from them.

The tap is a consumer like the services' own: aTES's broker port
(``ates.platform.broker.create_broker(url).consume``) with a group of its own, which
starts at the beginning of the retained log and is deleted at the end. It reads every
``TransactionApplied`` billing publishes, notes when each arrived (``perf_counter``, the
clock of the load generator), and keeps what a reader of the books needs: each task's
movements, each business day's management earnings (fees - rewards, DESIGN B6), each
person's latest balance. A redelivered event (same transaction id) counts once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from _system_client import BenchError

from ates.platform.broker import Ack, Broker, Delivery, Outcome, create_broker

EVENTS = ("TransactionApplied",)


@dataclass(frozen=True, slots=True)
class Movement:
    transaction: str
    owner: str
    kind: str  # assign_fee | reward | payout
    debit_cents: int
    credit_cents: int
    balance_after_cents: int
    task: str | None
    business_date: str
    applied_at: str
    arrived: float  # perf_counter() when the tap received it


@dataclass
class Books:
    """What billing's ``TransactionApplied`` events say, as they arrive."""

    movements: dict[str, Movement] = field(default_factory=dict)
    log: list[Movement] = field(default_factory=list)  # in order of arrival
    by_task: dict[str, list[Movement]] = field(default_factory=lambda: defaultdict(list))
    earnings: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    balances: dict[str, tuple[tuple[str, str], int]] = field(default_factory=dict)
    redelivered: int = 0

    def add(self, m: Movement) -> None:
        if m.transaction in self.movements:
            self.redelivered += 1
            return
        self.movements[m.transaction] = m
        self.log.append(m)
        if m.task is not None:
            self.by_task[m.task].append(m)
        if m.kind == "assign_fee":
            self.earnings[m.business_date] += m.debit_cents - m.credit_cents
        elif m.kind == "reward":
            self.earnings[m.business_date] -= m.credit_cents - m.debit_cents
        # the latest movement decides (analytics orders them the same way)
        stamp = (m.applied_at, m.transaction)
        known = self.balances.get(m.owner)
        if known is None or stamp > known[0]:
            self.balances[m.owner] = (stamp, m.balance_after_cents)

    def of(self, task: str, kind: str) -> list[Movement]:
        return [m for m in self.by_task.get(task, ()) if m.kind == kind]

    def has(self, task: str, kind: str) -> bool:
        return any(m.kind == kind for m in self.by_task.get(task, ()))

    def balance(self, owner: str) -> int | None:
        known = self.balances.get(owner)
        return None if known is None else known[1]

    def tied(self, owner: str) -> int:
        """How many of ``owner``'s movements share their ``applied_at`` with another one
        (then the events do not tell which balance came last)."""
        times = Counter(m.applied_at for m in self.movements.values() if m.owner == owner)
        return sum(n for n in times.values() if n > 1)

    def negative_workers(self, roles: dict[str, str]) -> int:
        """Analytics' count: owners in debt who are workers or unknown to auth (only
        workers are ever charged, DESIGN A2)."""
        return sum(
            1
            for owner, (_, cents) in self.balances.items()
            if cents < 0 and roles.get(owner, "worker") == "worker"
        )


def _movement(body: bytes, arrived: float) -> Movement:
    envelope = json.loads(body)
    data: dict[str, Any] = envelope["data"]
    return Movement(
        transaction=str(data["transaction_public_id"]),
        owner=str(data["owner_public_id"]),
        kind=str(data["kind"]),
        debit_cents=int(data["debit_cents"]),
        credit_cents=int(data["credit_cents"]),
        balance_after_cents=int(data["balance_after_cents"]),
        task=data.get("task_public_id"),
        business_date=str(data["business_date"]),
        applied_at=str(data["applied_at"]),
        arrived=arrived,
    )


class Tap:
    """``async with Tap(url) as tap``: consuming from entry until exit, group deleted."""

    def __init__(self, broker_url: str, batch_size: int = 256) -> None:
        self.broker: Broker = create_broker(broker_url)
        self.group = f"bench-tap-{uuid.uuid4().hex[:12]}"
        self.batch_size = batch_size
        self.books = Books()
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._events = 0

    async def _handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        arrived = time.perf_counter()
        for delivery in deliveries:
            if delivery.subject.endswith(".TransactionApplied"):
                self.books.add(_movement(delivery.body, arrived))
        self._events += len(deliveries)
        self.changed.set()
        return [Ack() for _ in deliveries]

    async def __aenter__(self) -> Tap:
        await self.broker.connect()
        consume: Any = self.broker.consume
        if "batch_size" in inspect.signature(consume).parameters:
            run = consume(self.group, "billing", EVENTS, self._handle, batch_size=self.batch_size)
        else:
            # TODO(issue 11): delete once every adapter takes batches. An adapter of the
            # previous port hands one delivery at a time and wants one outcome back; the
            # baseline in docs/benchmarks.md was measured through this.
            async def one(delivery: Delivery) -> Outcome:
                return (await self._handle([delivery]))[0]

            run = consume(self.group, "billing", EVENTS, one)
        self._task = asyncio.create_task(run, name="bench-tap")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self.broker.delete_group(self.group, "billing")
        with contextlib.suppress(Exception):
            await self.broker.close()

    async def wait_for_bookings(
        self,
        tasks: Iterable[str],
        kinds: Sequence[str],
        timeout: float,
        what: str,
        progress: Callable[[int], None] | None = None,
    ) -> float:
        """Until every task has a movement of each kind; when the last of them arrived.
        Each movement is looked at once, however many tasks are awaited."""
        needed = {(task, kind) for task in tasks for kind in kinds}
        total, seen, last = len(needed), 0, 0.0
        deadline = time.monotonic() + timeout
        while True:
            self.changed.clear()
            log = self.books.log
            for m in log[seen:]:
                if (m.task, m.kind) in needed:
                    needed.discard((m.task, m.kind))
                    last = max(last, m.arrived)
            seen = len(log)
            if progress is not None:
                progress(total - len(needed))
            if not needed:
                return last
            if self._task is not None and self._task.done():
                error = self._task.exception() if not self._task.cancelled() else None
                raise BenchError(f"the broker tap stopped: {error!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"after {timeout:.0f}s {what} ({len(needed)} of {total} missing)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))
