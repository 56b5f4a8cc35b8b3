"""Rebuilding a read model from the broker's retained log (``ates replay SERVICE``: the
command keeps its public name, see docs/rebuild.md; "replay" in aTES otherwise means
applying a dead letter again, ``ates.platform.deadletters``).

A service whose spec has a ``read_model_reset`` consumes in *generations*. Generation N
reads the broker with the durable group ``spec.consumer_group(N)`` and records what it
applied in the inbox under that same name. The current generation lives in the platform
table ``consumer_positions``, row ``(service, "live")``; while a rebuild runs, row
``(service, "rebuild")`` names the generation being built.

A rebuild (run by the CLI, see docs/rebuild.md):

1. in one transaction: names generation N+1 as the one being rebuilt, drops the
   projections (the spec's reset), forgets the inbox and supersedes pending dead letters;
2. consumes every consumed domain from the beginning of the log with the new group
   ``consumer_group(N+1)``, showing progress against ``broker.log_size``, until caught up;
3. in one transaction: makes N+1 the live generation; then deletes the old groups.

A running service follows the generation (:func:`follow_generations`): it stops its
consumers when a rebuild starts, and starts them again on the new group once the rebuild
is done, so it continues exactly where the rebuild stopped. Every handler call checks, in
its own transaction, that its generation is still the current one
(:func:`generation_guard`), so an event that an old consumer was applying while the
rebuild started is skipped, never applied on top of the rebuilt projections.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.broker import Ack, BatchHandler, Broker, Delivery, Outcome
from ates.platform.consumer import Batched, EventConsumer, Handler
from ates.platform.db import Database
from ates.platform.events import Event
from ates.platform.runtime import Runtime, ServiceSpec, domains_consumed
from ates.platform.tables import consumer_positions, dead_letters, inbox
from ates.platform.uow import UnitOfWork

log = structlog.get_logger(__name__)

# Stored values (rows of existing databases): never renamed.
LIVE = "live"  # consumer_positions.stream of the generation services consume
REBUILD = "rebuild"  # consumer_positions.stream of the generation a rebuild is building
SUPERSEDED = "superseded"  # dead-letter status: the rebuild consumes that event again

Progress = Callable[[int, int], None]  # (events done, events in the log)


class NotRebuildable(Exception):
    """The service keeps state of its own; only a read model can be rebuilt."""


class RebuildSuperseded(Exception):
    """Another rebuild of the same service started while this one ran."""


@dataclass(frozen=True, slots=True)
class GenerationState:
    live: int
    rebuilding: int | None = None

    @property
    def current(self) -> int:
        """The generation whose events may change the read model now."""
        return self.rebuilding if self.rebuilding is not None else self.live


@dataclass(frozen=True, slots=True)
class RebuildReport:
    service: str
    generation: int
    events: int  # deliveries the rebuild settled (applied, duplicate or dead-lettered)
    log_size: int  # messages in the consumed logs when the rebuild started
    seconds: float


# --- the generation, in consumer_positions ------------------------------------------


async def read_generation(
    session: AsyncSession, service: str, *, default: int = 1, lock: bool = False
) -> GenerationState:
    """``lock`` takes a share lock on the rows (PostgreSQL), so a rebuild that starts
    waits for the transaction that read them: what it applies is dropped by the reset,
    never written after it."""
    query = select(consumer_positions.c.stream, consumer_positions.c.generation).where(
        consumer_positions.c.consumer == service,
        consumer_positions.c.stream.in_((LIVE, REBUILD)),
    )
    if lock:
        query = query.with_for_update(read=True)
    rows = dict((await session.execute(query)).all())
    return GenerationState(live=rows.get(LIVE, default), rebuilding=rows.get(REBUILD))


async def ensure_generation(db: Database, service: str, default: int = 1) -> None:
    """Write the live row if missing, so that handlers have a row to lock."""
    async with db.sessions() as session, session.begin():
        try:
            async with session.begin_nested():
                await session.execute(
                    insert(consumer_positions).values(**_row(service, LIVE, default))
                )
        except IntegrityError:
            pass  # already there (or another process wrote it just now)


def _row(service: str, stream: str, generation: int) -> dict[str, object]:
    return {
        "consumer": service,
        "stream": stream,
        "position": 0,
        "generation": generation,
        "updated_at": datetime.now(UTC),
    }


async def _lock_generation(session: AsyncSession, service: str) -> GenerationState:
    query = (
        select(consumer_positions.c.stream, consumer_positions.c.generation)
        .where(
            consumer_positions.c.consumer == service,
            consumer_positions.c.stream.in_((LIVE, REBUILD)),
        )
        .with_for_update()
    )
    rows = dict((await session.execute(query)).all())
    return GenerationState(live=rows.get(LIVE, 1), rebuilding=rows.get(REBUILD))


async def _set_generation(
    session: AsyncSession, service: str, stream: str, generation: int
) -> None:
    changed = await session.execute(
        update(consumer_positions)
        .where(consumer_positions.c.consumer == service, consumer_positions.c.stream == stream)
        .values(generation=generation, updated_at=datetime.now(UTC))
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        await session.execute(
            insert(consumer_positions).values(**_row(service, stream, generation))
        )


# --- consuming one generation ---------------------------------------------------------


def generation_guard(
    handlers: Mapping[str, Handler], service: str, generation: int, *, default: int = 1
) -> dict[str, Handler]:
    """The handlers, each first checking (in the event's transaction) that ``generation``
    is still current; if not, the event is left to the current generation."""

    async def still_current(uow: UnitOfWork, events: Sequence[Event]) -> bool:
        state = await read_generation(uow.session, service, default=default, lock=True)
        if state.current != generation:
            log.info(
                "rebuild.skipped_stale",
                service=service,
                generation=generation,
                current=state.current,
                events=len(events),
            )
            return False
        return True

    def guard(handler: Handler) -> Handler:
        if isinstance(handler, Batched):
            batched = handler

            async def guarded_batch(events: Sequence[Event], uow: UnitOfWork) -> None:
                if await still_current(uow, events):
                    await batched.apply(events, uow)

            return Batched(guarded_batch)
        single = handler

        async def guarded(event: Event, uow: UnitOfWork) -> None:
            if await still_current(uow, [event]):
                await single(event, uow)

        return guarded

    # One guard per handler object: events of one Batched handler must stay grouped.
    guards: dict[int, Handler] = {}
    guarded: dict[str, Handler] = {}
    for name, handler in handlers.items():
        if id(handler) not in guards:
            guards[id(handler)] = guard(handler)
        guarded[name] = guards[id(handler)]
    return guarded


def generation_consumer(runtime: Runtime, generation: int, *, default: int = 1) -> EventConsumer:
    spec = runtime.spec
    return runtime.consumer(
        inbox_name=spec.consumer_group(generation),
        handlers=generation_guard(spec.consumes, spec.name, generation, default=default),
    )


async def follow_generations(
    runtime: Runtime, broker: Broker, *, default: int = 1, poll_seconds: float = 1.0
) -> None:
    """Run the service's consumers on the live generation; pause them while a rebuild runs
    and move to the new group when it is done. Runs until cancelled."""
    spec = runtime.spec
    domains = domains_consumed(spec, runtime.registry)
    await ensure_generation(runtime.db, spec.name, default)
    running: int | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        while True:
            async with runtime.db.reader() as session:
                state = await read_generation(session, spec.name, default=default)
            target = None if state.rebuilding is not None else state.live
            if target != running:
                await _stop(tasks)
                tasks = []
                if target is not None:
                    consumer = generation_consumer(runtime, target, default=default)
                    group = spec.consumer_group(target)
                    tasks = [
                        asyncio.create_task(
                            broker.consume(
                                group,
                                domain,
                                None,  # every message: see run_messaging
                                consumer,
                                batch_size=runtime.settings.consumer_batch_size,
                            )
                        )
                        for domain in domains
                    ]
                log.info(
                    "rebuild.following",
                    service=spec.name,
                    generation=target,
                    paused=target is None,
                )
                running = target
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            await asyncio.sleep(poll_seconds)
    finally:
        await _stop(tasks)


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


# --- the rebuild ----------------------------------------------------------------------


class _Tally:
    """Counts settled deliveries per domain and notices when the log has gone quiet."""

    def __init__(self, consumer: EventConsumer, progress: Progress | None, total: int) -> None:
        self.consumer = consumer
        self.progress = progress
        self.total = total
        self.done: dict[str, int] = {}
        self.in_flight = 0
        self.last_activity = time.monotonic()

    def handler(self, domain: str) -> BatchHandler:
        self.done.setdefault(domain, 0)

        async def deliver(deliveries: Sequence[Delivery]) -> Sequence[Outcome]:
            self.in_flight += 1
            try:
                outcomes = await self.consumer(deliveries)
            finally:
                self.in_flight -= 1
                self.last_activity = time.monotonic()
            self.done[domain] += sum(isinstance(outcome, Ack) for outcome in outcomes)
            if self.progress is not None:
                self.progress(self.count, self.total)
            return outcomes

        return deliver

    @property
    def count(self) -> int:
        return sum(self.done.values())

    def quiet_for(self) -> float:
        return 0.0 if self.in_flight else time.monotonic() - self.last_activity


async def rebuild(
    runtime: Runtime,
    broker: Broker,
    *,
    progress: Progress | None = None,
    settle_seconds: float = 1.5,
    idle_seconds: float = 15.0,
) -> RebuildReport:
    """Drop the read model of ``runtime``'s service and rebuild it from the broker's log.

    Caught up means: every domain delivered at least as many events as its log held when
    the rebuild started, and nothing arrived for ``settle_seconds``; or nothing at all
    arrived for ``idle_seconds`` (a log whose events we do not all consume).
    """
    spec = runtime.spec
    reset = spec.read_model_reset
    if reset is None:
        raise NotRebuildable(
            f"{spec.name} keeps state of its own, not a read model: only services that "
            "rebuild from events (analytics) can be rebuilt"
        )
    started = time.monotonic()
    generation = await _begin(runtime, reset)
    group = spec.consumer_group(generation)
    domains = domains_consumed(spec, runtime.registry)
    for domain in domains:  # a group of that name from an aborted attempt starts over
        await broker.delete_group(group, domain)
    sizes = {domain: await broker.log_size(domain) for domain in domains}
    total = sum(sizes.values())
    if progress is not None:
        progress(0, total)
    tally = _Tally(generation_consumer(runtime, generation), progress, total)
    tasks = [
        asyncio.create_task(
            broker.consume(
                group,
                domain,
                None,
                tally.handler(domain),
                batch_size=runtime.settings.consumer_batch_size,
            )
        )
        for domain in domains
    ]
    try:
        while True:
            await asyncio.sleep(0.1)
            for task in tasks:
                if task.done():
                    task.result()  # a consumer died: raise its error
                    raise RuntimeError(f"consumer of {group} stopped")
            quiet = tally.quiet_for()
            caught_up = all(tally.done[d] >= sizes[d] for d in domains)
            if (caught_up and quiet >= settle_seconds) or quiet >= idle_seconds:
                break
    finally:
        await _stop(tasks)
    await _finish(runtime, broker, generation, domains)
    return RebuildReport(
        service=spec.name,
        generation=generation,
        events=tally.count,
        log_size=total,
        seconds=time.monotonic() - started,
    )


async def _begin(runtime: Runtime, reset: Callable[[UnitOfWork], Awaitable[None]]) -> int:
    service = runtime.spec.name
    spec = runtime.spec
    await ensure_generation(runtime.db, service)
    async with runtime.uow() as uow:
        state = await _lock_generation(uow.session, service)
        generation = max(state.live, state.rebuilding or 0) + 1
        await _set_generation(uow.session, service, REBUILD, generation)
        await reset(uow)
        groups = [spec.consumer_group(g) for g in range(1, generation + 1)]
        await uow.session.execute(delete(inbox).where(inbox.c.consumer.in_(groups)))
        # Letters of earlier generations would be applied again by the rebuild; replaying
        # them by hand afterwards would apply them twice.
        await uow.session.execute(
            update(dead_letters)
            .where(dead_letters.c.consumer.in_(groups), dead_letters.c.status == "pending")
            .values(status=SUPERSEDED, resolved_at=datetime.now(UTC))
        )
        await uow.commit()
    log.info("rebuild.started", service=service, generation=generation)
    return generation


async def _finish(runtime: Runtime, broker: Broker, generation: int, domains: list[str]) -> None:
    spec = runtime.spec
    async with runtime.uow() as uow:
        state = await _lock_generation(uow.session, spec.name)
        if state.rebuilding != generation:
            raise RebuildSuperseded(
                f"another rebuild of {spec.name} (generation {state.rebuilding}) started "
                f"while generation {generation} was rebuilding; it carries on"
            )
        await _set_generation(uow.session, spec.name, LIVE, generation)
        await uow.session.execute(
            delete(consumer_positions).where(
                consumer_positions.c.consumer == spec.name, consumer_positions.c.stream == REBUILD
            )
        )
        # inbox rows an old consumer wrote while skipping stale events
        old = [spec.consumer_group(g) for g in range(1, generation)]
        await uow.session.execute(delete(inbox).where(inbox.c.consumer.in_(old)))
        await uow.commit()
    for old_generation in range(1, generation):
        for domain in domains:
            await broker.delete_group(spec.consumer_group(old_generation), domain)
    log.info("rebuild.finished", service=spec.name, generation=generation)


def is_rebuildable(spec: ServiceSpec) -> bool:
    return spec.read_model_reset is not None
