"""The dead-letter store of a service: inspect, replay after a fix, or discard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from ates.platform.consumer import EventConsumer
from ates.platform.db import Database
from ates.platform.events import Event
from ates.platform.tables import dead_letters


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


async def _resolve(db: Database, letter_id: int, status: str, error: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "resolved_at": datetime.now(UTC)}
    if error is not None:
        values = {"error": error[:4000]}
    async with db.sessions() as session, session.begin():
        await session.execute(
            update(dead_letters).where(dead_letters.c.id == letter_id).values(**values)
        )


async def replay(consumer: EventConsumer, letter_id: int) -> str:
    """Apply a dead letter again with ``consumer``'s handlers, through the inbox of the
    consumer that dead-lettered it (the letter's ``consumer``: a replayable service's
    generation keeps an inbox of its own). Returns what happened."""
    letter = await get_dead_letter(consumer.db, letter_id)
    if letter is None:
        raise LookupError(f"no dead letter {letter_id}")
    if letter.status != "pending":
        raise ValueError(f"dead letter {letter_id} is already {letter.status}")
    own_inbox = EventConsumer(
        consumer.service,
        consumer.db,
        consumer.handlers,
        consumer.registry,
        max_deliveries=consumer.max_deliveries,
        backoff_seconds=consumer.backoff_seconds,
        inbox_name=letter.consumer,
    )
    try:
        event = consumer.registry.upcast(Event.from_json(letter.payload))
        applied = await own_inbox.apply(event)
    except Exception as error:
        await _resolve(consumer.db, letter_id, "pending", error=f"replay failed: {error!r}")
        raise
    await _resolve(consumer.db, letter_id, "replayed")
    return "applied" if applied else "already applied (duplicate)"


async def discard(db: Database, letter_id: int) -> None:
    letter = await get_dead_letter(db, letter_id)
    if letter is None:
        raise LookupError(f"no dead letter {letter_id}")
    await _resolve(db, letter_id, "discarded")
