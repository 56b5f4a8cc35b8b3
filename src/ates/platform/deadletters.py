"""The dead-letter store of a service: inspect, replay after a fix, or discard; and the
automatic retry of transient failures when the service starts.

A letter records why it is there (``kind``): ``invalid`` (not an envelope, or not valid
under its schema), ``rejected`` (the handler said no retry can ever apply it) or
``failed`` (the handler raised something else, ``ATES_MAX_DELIVERIES`` times). Only a
failure may be transient — a database that was away, a bug fixed since — so only
failures are retried at start, at most ``ATES_DEAD_LETTER_RETRIES_AT_START`` times over
the service's starts. Every replay and retry goes through the inbox of the consumer that
gave up (the consumer's ``apply``): whatever happens, the event is applied once. What
the latest one did is kept on the letter (``outcome``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select, update

from ates.platform.consumer import EventConsumer, Rejected
from ates.platform.db import Database
from ates.platform.events import Event
from ates.platform.rebuild import ensure_generation, generation_consumer, read_generation
from ates.platform.runtime import Runtime
from ates.platform.tables import dead_letters
from ates.platform.telemetry import DEAD_LETTERS_RETRIED_AT_START

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    id: int
    consumer: str
    event_id: str | None
    event_name: str | None
    subject: str
    payload: str
    error: str
    attempts: int
    status: str
    created_at: datetime
    kind: str | None = None
    retries: int = 0
    outcome: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> DeadLetter:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


async def list_dead_letters(
    db: Database, status: str | None = "pending", limit: int = 100
) -> list[DeadLetter]:
    query = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
    if status:
        query = query.where(dead_letters.c.status == status)
    async with db.reader() as session:
        return [DeadLetter.from_row(row) for row in (await session.execute(query)).all()]


async def get_dead_letter(db: Database, letter_id: int) -> DeadLetter | None:
    async with db.reader() as session:
        row = (
            await session.execute(select(dead_letters).where(dead_letters.c.id == letter_id))
        ).first()
    return DeadLetter.from_row(row) if row else None


async def _resolve(
    db: Database,
    letter_id: int,
    status: str,
    error: str | None = None,
    **values: Any,
) -> None:
    """Set the letter's status (stamped ``resolved_at`` unless it stays pending), its
    error if given, and any other column in ``values``."""
    values["status"] = status
    values["resolved_at"] = None if status == "pending" else datetime.now(UTC)
    if error is not None:
        values["error"] = error[:4000]
    async with db.write_turn(), db.sessions() as session, session.begin():
        await session.execute(
            update(dead_letters).where(dead_letters.c.id == letter_id).values(**values)
        )


def _own_inbox(consumer: EventConsumer, inbox_name: str) -> EventConsumer:
    """``consumer``'s handlers, recording in the inbox of the consumer that gave up (a
    rebuildable service's generation keeps an inbox of its own)."""
    return EventConsumer(
        consumer.service,
        consumer.db,
        consumer.handlers,
        consumer.registry,
        max_deliveries=consumer.max_deliveries,
        backoff_seconds=consumer.backoff_seconds,
        inbox_name=inbox_name,
        tracing=consumer.tracing,
    )


async def replay(consumer: EventConsumer, letter_id: int) -> str:
    """Apply a dead letter again with ``consumer``'s handlers, through the inbox of the
    consumer that dead-lettered it (the letter's ``consumer``). Returns what happened."""
    letter = await get_dead_letter(consumer.db, letter_id)
    if letter is None:
        raise LookupError(f"no dead letter {letter_id}")
    if letter.status != "pending":
        raise ValueError(f"dead letter {letter_id} is already {letter.status}")
    try:
        event = consumer.registry.upcast(Event.from_json(letter.payload))
        applied = await _own_inbox(consumer, letter.consumer).apply(event)
    except Exception as error:
        await _resolve(
            consumer.db,
            letter_id,
            "pending",
            error=f"replay failed: {error!r}",
            outcome=f"replay failed: {error!r}"[:4000],
            kind="rejected" if isinstance(error, Rejected) else letter.kind,
        )
        raise
    outcome = "applied" if applied else "already applied (duplicate)"
    await _resolve(consumer.db, letter_id, "replayed", outcome=f"replayed: {outcome}")
    return outcome


async def discard(db: Database, letter_id: int) -> None:
    letter = await get_dead_letter(db, letter_id)
    if letter is None:
        raise LookupError(f"no dead letter {letter_id}")
    await _resolve(db, letter_id, "discarded")


# --- retry at start ------------------------------------------------------------------------


async def retry_transient(
    consumer: EventConsumer, inbox_name: str, limit: int, *, before: datetime | None = None
) -> dict[int, str]:
    """Retry once each pending letter of ``inbox_name`` whose failure may have been
    transient (``kind`` failed), that was retried fewer than ``limit`` times (and was
    written ``before`` a moment, if given). Each is
    first claimed (its ``retries`` counted up only if no other process did meanwhile),
    then applied through the inbox; the outcome is recorded on the letter. Returns
    letter id -> outcome (applied, duplicate, failed, rejected)."""
    query = (
        select(dead_letters.c.id, dead_letters.c.retries)
        .where(
            dead_letters.c.status == "pending",
            dead_letters.c.kind == "failed",
            dead_letters.c.consumer == inbox_name,
            dead_letters.c.retries < limit,
        )
        .order_by(dead_letters.c.id)
    )
    if before is not None:
        query = query.where(dead_letters.c.created_at < before)
    async with consumer.db.reader() as session:
        candidates = (await session.execute(query)).all()
    own = _own_inbox(consumer, inbox_name)
    outcomes: dict[int, str] = {}
    for letter_id, retries in candidates:
        if not await _claim(consumer.db, letter_id, retries):
            continue  # another process of the service took it
        letter = await get_dead_letter(consumer.db, letter_id)
        assert letter is not None
        outcomes[letter_id] = await _retry_one(own, letter, f"{retries + 1} of {limit}")
        DEAD_LETTERS_RETRIED_AT_START.labels(consumer.service, outcomes[letter_id]).inc()
    return outcomes


async def _claim(db: Database, letter_id: int, retries: int) -> bool:
    async with db.write_turn(), db.sessions() as session, session.begin():
        result = await session.execute(
            update(dead_letters)
            .where(
                dead_letters.c.id == letter_id,
                dead_letters.c.status == "pending",
                dead_letters.c.retries == retries,
            )
            .values(retries=retries + 1)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _retry_one(consumer: EventConsumer, letter: DeadLetter, which: str) -> str:
    try:
        event = consumer.registry.upcast(Event.from_json(letter.payload))
        applied = await consumer.apply(event)
    except Rejected as error:
        note = f"retried at start ({which}): rejected: {error}"
        await _resolve(consumer.db, letter.id, "pending", outcome=note[:4000], kind="rejected")
        log.warning("deadletters.retry_rejected", letter=letter.id, event_id=letter.event_id)
        return "rejected"
    except Exception as error:
        note = f"retried at start ({which}): failed: {error!r}"
        await _resolve(consumer.db, letter.id, "pending", outcome=note[:4000])
        log.warning(
            "deadletters.retry_failed",
            letter=letter.id,
            event_id=letter.event_id,
            error=repr(error),
        )
        return "failed"
    outcome = "applied" if applied else "duplicate"
    note = f"retried at start ({which}): {'applied' if applied else 'already applied'}"
    await _resolve(consumer.db, letter.id, "replayed", outcome=note)
    log.info("deadletters.retried", letter=letter.id, event_id=letter.event_id, outcome=outcome)
    return outcome


async def retry_at_start(runtime: Runtime, started: datetime) -> None:
    """The start-up job of a consuming service: retry the transient failures of the
    inbox it consumes into now (a read model's live generation) that were dead-lettered
    before this start (``started``), not those its consumers give up on meanwhile."""
    limit = runtime.settings.dead_letter_retries_at_start
    for outcome in ("applied", "duplicate", "failed", "rejected"):  # each series from 0
        DEAD_LETTERS_RETRIED_AT_START.labels(runtime.service, outcome)
    if runtime.spec.read_model_reset is not None:
        await ensure_generation(runtime.db, runtime.spec.name)
        async with runtime.db.reader() as session:
            state = await read_generation(session, runtime.spec.name)
        if state.rebuilding is not None:
            return  # a rebuild applies the whole log again (its letters were superseded)
        consumer = generation_consumer(runtime, state.live)
    else:
        consumer = runtime.consumer()
    outcomes = await retry_transient(consumer, consumer.inbox_name, limit, before=started)
    if outcomes:
        log.info("deadletters.retried_at_start", service=runtime.service, outcomes=outcomes)
