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

Each event is applied under the trace it arrived with (``ates.platform.tracing``): the
events its handler emits continue it. Metrics are counted once per batch, from label
children cached by the consumer; with tracing on, a batch, each event's processing and
each handler call are spans.

On PostgreSQL, several processes of one service may consume at once. A batch touches hot
rows (the company account, the day's totals) and inserts rows another batch may insert
too (a task's price): two batches holding those in different orders would deadlock. A
transaction-scoped advisory lock per service makes batches of one service take turns;
decoding and validation, most of the work, still run side by side.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from ates.platform.broker import Ack, Delivery, Outcome, Retry
from ates.platform.db import Database, lock_key
from ates.platform.events import Event, Registry
from ates.platform.tables import dead_letters, inbox
from ates.platform.telemetry import (
    CONSUMER_BATCH_SIZE,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_RETRIED,
    HANDLER_SECONDS,
)
from ates.platform.tracing import OFF, ConsumedBatch, Tracing, trace_id_of
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
OUTCOMES = ("applied", "duplicate", "retry", "dead_lettered")
DEAD_LETTER_KINDS = ("invalid", "rejected", "failed")
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
    kind: str = ""  # why it was dead-lettered: invalid | rejected | failed


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
        tracing: Tracing | None = None,
    ) -> None:
        self.service = service
        self.inbox_name = inbox_name or service
        self.db = db
        self.handlers = dict(handlers)
        self.registry = registry
        self.max_deliveries = max_deliveries
        self.backoff_seconds = backoff_seconds
        self.observer = observer
        self.tracing = tracing or OFF
        # Label children, looked up once: a labels() call costs more than the increment.
        self._consumed: dict[tuple[str, str], Any] = {}
        self._sizes: dict[str, Any] = {}
        self._handler_names = _handler_names(self.handlers)
        self._timers = {
            key: HANDLER_SECONDS.labels(service, name) for key, name in self._handler_names.items()
        }
        for name in self.handlers:  # every series exists from the start, at 0
            for outcome in OUTCOMES:
                self._consumed[(name, outcome)] = EVENTS_CONSUMED.labels(service, name, outcome)
            EVENTS_RETRIED.labels(service, name)
            for kind in DEAD_LETTER_KINDS:
                EVENTS_DEAD_LETTERED.labels(service, name, kind)

    # --- the broker's entry points -------------------------------------------------------

    async def __call__(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Apply a batch in one transaction; one outcome per delivery, in order."""
        skipped = [self._not_ours(d) for d in deliveries]
        if any(skipped):
            ours = [d for d, skip in zip(deliveries, skipped, strict=True) if not skip]
            outcomes = iter(await self(ours) if ours else [])
            return [Ack() if skip else next(outcomes) for skip in skipped]
        items = [self._decode(delivery) for delivery in deliveries]
        domain = deliveries[0].subject.partition(".")[0] if deliveries else ""
        spans = None
        if self.tracing.enabled:
            spans = ConsumedBatch(self.tracing, self.inbox_name, domain, [i.event for i in items])
        try:
            if spans is not None:
                spans.enter()
            async with UnitOfWork(self.db, producer=self.service, registry=self.registry) as uow:
                if spans is not None:
                    uow.causes = spans.causes()
                await self._take_turn(uow)
                await self._apply_items(uow, items, spans)
                await uow.commit()
        except Exception as error:
            # The transaction itself failed (the database went away, a lock timed out):
            # nothing of the batch was applied, every message comes again.
            log.warning(
                "consumer.batch_failed", service=self.service, size=len(items), error=repr(error)
            )
            if spans is not None:
                spans.exit(error=error)
            return [self._retry(item.delivery) for item in items]
        self._count(items, domain)
        if spans is not None:
            spans.exit(statuses={id(i.event): i.status for i in items if i.event is not None})
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
                    await self._apply_one(uow, event, None)
            except _Duplicate:
                return False
            await uow.commit()
        return True

    # --- inside the batch's transaction ---------------------------------------------------

    def _not_ours(self, delivery: Delivery) -> bool:
        """A registered event this service does not handle: acknowledged unread. (A name
        the registry does not know is read, and dead-lettered: nothing vanishes.)"""
        name = delivery.subject.partition(".")[2]
        return name not in self.handlers and self.registry.knows(name)

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

    async def _apply_items(
        self, uow: UnitOfWork, items: Sequence[_Item], spans: ConsumedBatch | None
    ) -> None:
        ids = [str(item.event.event_id) for item in items if item.event and not item.problem]
        done = await self._in_inbox(uow, ids) if ids else set()
        fresh: list[_Item] = []
        for item in items:
            if item.problem is not None:
                await self._dead_letter(uow, item, "invalid", item.problem)
                continue
            assert item.event is not None
            event_id = str(item.event.event_id)
            if event_id in done:
                item.status = "duplicate"  # applied before, or earlier in this batch
                continue
            done.add(event_id)
            fresh.append(item)
        if len(fresh) <= 1:  # nothing to gain from applying one event "together"
            await self._apply_one_by_one(uow, fresh, spans)
            return
        try:
            async with uow.savepoint():
                await self._apply_together(uow, [item.event for item in fresh if item.event], spans)
        except Exception as error:
            log.info(
                "consumer.batch_one_by_one",
                service=self.service,
                size=len(fresh),
                error=repr(error),
            )
            await self._apply_one_by_one(uow, fresh, spans)

    async def _apply_together(
        self, uow: UnitOfWork, events: Sequence[Event], spans: ConsumedBatch | None
    ) -> None:
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
        await self._handle(uow, events, spans)

    async def _handle(
        self, uow: UnitOfWork, events: Sequence[Event], spans: ConsumedBatch | None
    ) -> None:
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
                await self._call_batched(batched, run, uow, spans)
            run, batched = [], None
            if isinstance(handler, Batched):
                run, batched = [event], handler
            elif handler is not None:
                await self._call_single(handler, event, uow, spans)
        if batched is not None:
            await self._call_batched(batched, run, uow, spans)

    async def _call_batched(
        self,
        handler: Batched,
        events: Sequence[Event],
        uow: UnitOfWork,
        spans: ConsumedBatch | None,
    ) -> None:
        """A run of events in one call; the handler names each emit's cause itself
        (``uow.emit(..., caused_by=event)``)."""
        started = time.perf_counter()
        try:
            if spans is None:
                await handler.apply(events, uow)
            else:
                with spans.handling(self._handler_names[id(handler)], events):
                    await handler.apply(events, uow)
        finally:
            self._timers[id(handler)].observe(time.perf_counter() - started)

    async def _call_single(
        self,
        handler: EventHandler,
        event: Event,
        uow: UnitOfWork,
        spans: ConsumedBatch | None,
    ) -> None:
        """One event; what the handler emits continues the event's trace."""
        started = time.perf_counter()
        before, uow.trace = uow.trace, uow.trace_of(event)
        try:
            if spans is None:
                await handler(event, uow)
            else:
                with spans.handling(self._handler_names[id(handler)], [event], uow=uow):
                    await handler(event, uow)
        finally:
            uow.trace = before
            self._timers[id(handler)].observe(time.perf_counter() - started)

    async def _apply_one_by_one(
        self, uow: UnitOfWork, items: Sequence[_Item], spans: ConsumedBatch | None
    ) -> None:
        for item in items:
            event = item.event
            assert event is not None
            try:
                async with uow.savepoint():
                    await self._apply_one(uow, event, spans)
            except _Duplicate:
                item.status = "duplicate"
            except Rejected as error:
                await self._dead_letter(uow, item, "rejected", f"rejected: {error}")
            except Exception as error:
                await self._failed(uow, item, error)

    async def _apply_one(self, uow: UnitOfWork, event: Event, spans: ConsumedBatch | None) -> None:
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
        await self._handle(uow, [event], spans)

    async def _failed(self, uow: UnitOfWork, item: _Item, error: Exception) -> None:
        assert item.event is not None
        attempt = item.delivery.attempt
        if attempt >= self.max_deliveries:
            log.error(
                "consumer.gave_up",
                service=self.service,
                event_name=item.event.event_name,
                event_id=str(item.event.event_id),
                trace_id=trace_id_of(item.event.trace),
                error=repr(error),
                exc_info=error,
            )
            await self._dead_letter(uow, item, "failed", f"failed: {error!r}")
            return
        log.warning(
            "consumer.retry",
            service=self.service,
            event_name=item.event.event_name,
            event_id=str(item.event.event_id),
            trace_id=trace_id_of(item.event.trace),
            attempt=attempt,
            error=repr(error),
        )
        item.status = "retry"
        item.outcome = self._retry(item.delivery)

    async def _dead_letter(self, uow: UnitOfWork, item: _Item, kind: str, reason: str) -> None:
        event, delivery = item.event, item.delivery
        await uow.session.execute(
            insert(dead_letters).values(
                consumer=self.inbox_name,
                event_id=str(event.event_id) if event else None,
                event_name=event.event_name if event else None,
                subject=delivery.subject,
                payload=delivery.body.decode("utf-8", errors="replace"),
                error=reason[:4000],
                kind=kind,
                attempts=delivery.attempt,
                created_at=datetime.now(UTC),
            )
        )
        log.error(
            "consumer.dead_lettered",
            service=self.service,
            subject=delivery.subject,
            event_id=str(event.event_id) if event else None,
            trace_id=trace_id_of(event.trace) if event else None,
            reason=reason,
        )
        item.status, item.kind = "dead_lettered", kind

    # --- outcomes ---------------------------------------------------------------------------

    def _retry(self, delivery: Delivery) -> Retry:
        return Retry(self.backoff_seconds * 2 ** (max(delivery.attempt, 1) - 1))

    def _count(self, items: Sequence[_Item], domain: str) -> None:
        """The batch's outcomes into the metrics: one increment per (event, outcome)."""
        tally: dict[tuple[str, str], int] = {}
        for item in items:
            key = (item.event.event_name if item.event else "?", item.status)
            tally[key] = tally.get(key, 0) + 1
            if item.status == "retry":
                EVENTS_RETRIED.labels(self.service, key[0]).inc()
            elif item.status == "dead_lettered":
                EVENTS_DEAD_LETTERED.labels(self.service, key[0], item.kind).inc()
            if self.observer is not None:
                self.observer(item.event, item.status)
        for key, count in tally.items():
            child = self._consumed.get(key)
            if child is None:
                child = self._consumed[key] = EVENTS_CONSUMED.labels(self.service, *key)
            child.inc(count)
        size = self._sizes.get(domain)
        if size is None:
            size = self._sizes[domain] = CONSUMER_BATCH_SIZE.labels(self.service, domain)
        size.observe(len(items))


def _handler_names(handlers: Mapping[str, Handler]) -> dict[int, str]:
    """A label per handler object: the events it handles (a set-based handler takes
    several), e.g. ``TaskCreated,TaskAssigned,TaskCompleted``."""
    names: dict[int, list[str]] = {}
    for event_name, handler in handlers.items():
        names.setdefault(id(handler), []).append(event_name)
    return {key: ",".join(events) for key, events in names.items()}
