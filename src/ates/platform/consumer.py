"""Consuming events: a batch at a time, each event exactly once, nothing lost.

``EventConsumer`` is the one place that decides what happens to a delivery:

- not an envelope, too big, or not valid under its registered schema -> dead letter;
- the event id already in the inbox (or earlier in the same batch) -> acknowledged, skipped;
- a handler raises :class:`Rejected` (the event can never be applied) -> dead letter;
- any other error -> redelivered with backoff; after ``max_deliveries`` -> dead letter.

A batch is one database transaction, committed once, with one fsync. The new events of a
batch are first applied together: their inbox rows in one statement, then the handlers in
delivery order — a :class:`Batched` handler takes a run of consecutive events at once and
writes them with a few set-based statements. If anything in that fails, it is rolled back
and the events are applied again one by one, each in a savepoint of its own (its inbox row
and its effects), so an event that fails rolls back alone, goes to the retry or
dead-letter policy, and the rest of the batch commits. The adapter acknowledges only after
the commit; a crash before it redelivers the batch, and the inbox skips what was applied.

On PostgreSQL, several processes of one service may consume at once. A batch touches hot
rows (the company account, the day's totals) and inserts rows another batch may insert
too (a task's price): two batches holding those in different orders would deadlock. A
transaction-scoped advisory lock per service makes batches of one service take turns;
decoding and validation, most of the work, still run side by side.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from ates.platform.broker import Ack, Delivery, Outcome, Retry
from ates.platform.db import Database, lock_key
from ates.platform.events import Event, Registry
from ates.platform.tables import dead_letters, inbox
from ates.platform.telemetry import EVENTS_CONSUMED
from ates.platform.uow import UnitOfWork

log = structlog.get_logger(__name__)

_INSERT_INBOX = insert(inbox)
_IN_INBOX = select(inbox.c.event_id).where(
    inbox.c.consumer == bindparam("consumer"),
    inbox.c.event_id.in_(bindparam("ids", expanding=True)),
)

EventHandler = Callable[[Event, UnitOfWork], Awaitable[None]]


class Batched:
    """A handler that applies several events at once, in the order given: consecutive
    events of a batch that map to the same ``Batched`` go to one call. Its effect must be
    that of applying them one after the other (a batch of one is the same call)."""

    def __init__(self, apply: Callable[[Sequence[Event], UnitOfWork], Awaitable[None]]) -> None:
        self.apply = apply

    def __repr__(self) -> str:
        return f"Batched({getattr(self.apply, '__qualname__', self.apply)!r})"


Handler = EventHandler | Batched
# Told after each batch's commit what became of each event: "applied", "duplicate",
# "dead_lettered" or "retry" (the event is None for a message that did not parse).
Observer = Callable[[Event | None, str], None]


class Rejected(Exception):
    """Raised by a handler for an event that no retry can ever apply."""


class _Duplicate(Exception):
    """The event's inbox row exists: another process applied it meanwhile."""


@dataclass(slots=True)
class _Item:
    """One delivery on its way through a batch."""

    delivery: Delivery
    event: Event | None = None
    problem: str | None = None  # why it goes to the dead letters
    outcome: Outcome | None = None
    status: str = "applied"  # applied | duplicate | retry | dead_lettered


class EventConsumer:
    def __init__(
        self,
        service: str,
        db: Database,
        handlers: Mapping[str, Handler],
        registry: Registry,
        *,
        max_deliveries: int = 5,
        backoff_seconds: float = 0.5,
        inbox_name: str | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.service = service
        self.inbox_name = inbox_name or service
        self.db = db
        self.handlers = dict(handlers)
        self.registry = registry
        self.max_deliveries = max_deliveries
        self.backoff_seconds = backoff_seconds
        self.observer = observer

    # --- the broker's entry points -------------------------------------------------------

    async def __call__(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Apply a batch in one transaction; one outcome per delivery, in order."""
        items = [self._decode(delivery) for delivery in deliveries]
        try:
            async with UnitOfWork(self.db, producer=self.service, registry=self.registry) as uow:
                await self._take_turn(uow)
                await self._apply_items(uow, items)
                await uow.commit()
        except Exception as error:
            # The transaction itself failed (the database went away, a lock timed out):
            # nothing of the batch was applied, every message comes again.
            log.warning(
                "consumer.batch_failed", service=self.service, size=len(items), error=repr(error)
            )
            return [self._retry(item.delivery) for item in items]
        for item in items:
            self._count(item)
        return [item.outcome or Ack() for item in items]

    async def deliver_one(self, delivery: Delivery) -> Outcome:
        """A batch of one (tests, tools)."""
        return (await self([delivery]))[0]

    async def apply(self, event: Event) -> bool:
        """Apply an (upcast, valid) event once, errors raised to the caller (dead-letter
        replay, tools). False if it was applied before."""
        async with UnitOfWork(self.db, producer=self.service, registry=self.registry) as uow:
            await self._take_turn(uow)
            if await self._in_inbox(uow, [str(event.event_id)]):
                return False
            try:
                async with uow.savepoint():
                    await self._apply_one(uow, event)
            except _Duplicate:
                return False
            await uow.commit()
        return True

    # --- inside the batch's transaction ---------------------------------------------------

    def _decode(self, delivery: Delivery) -> _Item:
        item = _Item(delivery)
        try:
            item.event = self.registry.upcast(Event.from_json(delivery.body))
        except Exception as error:  # anything at all: a poison message must not kill us
            item.problem = f"invalid: {type(error).__name__}: {error}"
            try:  # keep the name and id of an envelope that parsed, for the operator
                item.event = Event.from_json(delivery.body)
            except Exception:
                item.event = None
        return item

    async def _take_turn(self, uow: UnitOfWork) -> None:
        if not self.db.is_sqlite:
            key = lock_key(f"consume:{self.service}")
            await uow.session.execute(select(func.pg_advisory_xact_lock(key)))

    async def _in_inbox(self, uow: UnitOfWork, event_ids: Sequence[str]) -> set[str]:
        connection = await uow.session.connection()
        rows = await connection.execute(
            _IN_INBOX, {"consumer": self.inbox_name, "ids": list(event_ids)}
        )
        return set(rows.scalars())

    async def _apply_items(self, uow: UnitOfWork, items: Sequence[_Item]) -> None:
        ids = [str(item.event.event_id) for item in items if item.event and not item.problem]
        done = await self._in_inbox(uow, ids) if ids else set()
        fresh: list[_Item] = []
        for item in items:
            if item.problem is not None:
                await self._dead_letter(uow, item, item.problem)
                continue
            assert item.event is not None
            event_id = str(item.event.event_id)
            if event_id in done:
                item.status = "duplicate"  # applied before, or earlier in this batch
                continue
            done.add(event_id)
            fresh.append(item)
        if len(fresh) <= 1:  # nothing to gain from applying one event "together"
            await self._apply_one_by_one(uow, fresh)
            return
        try:
            async with uow.savepoint():
                await self._apply_together(uow, [item.event for item in fresh if item.event])
        except Exception as error:
            log.info(
                "consumer.batch_one_by_one",
                service=self.service,
                size=len(fresh),
                error=repr(error),
            )
            await self._apply_one_by_one(uow, fresh)

    async def _apply_together(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        now = datetime.now(UTC)
        connection = await uow.session.connection()
        await connection.execute(
            _INSERT_INBOX,
            [
                {
                    "consumer": self.inbox_name,
                    "event_id": str(event.event_id),
                    "event_name": event.event_name,
                    "processed_at": now,
                }
                for event in events
            ],
        )
        await self._handle(uow, events)

    async def _handle(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        """Run the handlers in delivery order; a run of consecutive events of one
        :class:`Batched` handler goes to it in one call."""
        run: list[Event] = []
        batched: Batched | None = None
        for event in events:
            handler = self.handlers.get(event.event_name)
            if isinstance(handler, Batched) and handler is batched:
                run.append(event)
                continue
            if batched is not None:
                await batched.apply(run, uow)
            run, batched = [], None
            if isinstance(handler, Batched):
                run, batched = [event], handler
            elif handler is not None:
                await handler(event, uow)
        if batched is not None:
            await batched.apply(run, uow)

    async def _apply_one_by_one(self, uow: UnitOfWork, items: Sequence[_Item]) -> None:
        for item in items:
            event = item.event
            assert event is not None
            try:
                async with uow.savepoint():
                    await self._apply_one(uow, event)
            except _Duplicate:
                item.status = "duplicate"
            except Rejected as error:
                await self._dead_letter(uow, item, f"rejected: {error}")
            except Exception as error:
                await self._failed(uow, item, error)

    async def _apply_one(self, uow: UnitOfWork, event: Event) -> None:
        try:
            await uow.session.execute(
                insert(inbox).values(
                    consumer=self.inbox_name,
                    event_id=str(event.event_id),
                    event_name=event.event_name,
                    processed_at=datetime.now(UTC),
                )
            )
        except IntegrityError:
            raise _Duplicate() from None
        await self._handle(uow, [event])

    async def _failed(self, uow: UnitOfWork, item: _Item, error: Exception) -> None:
        assert item.event is not None
        attempt = item.delivery.attempt
        if attempt >= self.max_deliveries:
            log.error(
                "consumer.gave_up",
                service=self.service,
                event_name=item.event.event_name,
                event_id=str(item.event.event_id),
                error=repr(error),
                exc_info=error,
            )
            await self._dead_letter(uow, item, f"failed: {error!r}")
            return
        log.warning(
            "consumer.retry",
            service=self.service,
            event_name=item.event.event_name,
            attempt=attempt,
            error=repr(error),
        )
        item.status = "retry"
        item.outcome = self._retry(item.delivery)

    async def _dead_letter(self, uow: UnitOfWork, item: _Item, reason: str) -> None:
        event, delivery = item.event, item.delivery
        await uow.session.execute(
            insert(dead_letters).values(
                consumer=self.inbox_name,
                event_id=str(event.event_id) if event else None,
                event_name=event.event_name if event else None,
                subject=delivery.subject,
                payload=delivery.body.decode("utf-8", errors="replace"),
                error=reason[:4000],
                attempts=delivery.attempt,
                created_at=datetime.now(UTC),
            )
        )
        log.error(
            "consumer.dead_lettered", service=self.service, subject=delivery.subject, reason=reason
        )
        item.status = "dead_lettered"

    # --- outcomes ---------------------------------------------------------------------------

    def _retry(self, delivery: Delivery) -> Retry:
        return Retry(self.backoff_seconds * 2 ** (max(delivery.attempt, 1) - 1))

    def _count(self, item: _Item) -> None:
        name = item.event.event_name if item.event else "?"
        EVENTS_CONSUMED.labels(self.service, name, item.status).inc()
        if self.observer is not None:
            self.observer(item.event, item.status)
