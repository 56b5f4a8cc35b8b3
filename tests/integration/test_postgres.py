"""The platform's storage on PostgreSQL: migrations, types, inbox dedup between processes,
dead letters, relays sharing an outbox. Each test has a database of its own
(``postgres_url``), dropped afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, insert, select, text

from ates.config import SERVICES
from ates.platform import deadletters, migrations
from ates.platform.broker import Ack, Delivery, OutgoingMessage, Retry, create_broker
from ates.platform.consumer import EventConsumer
from ates.platform.db import Database
from ates.platform.events import Event, default_registry
from ates.platform.outbox import OutboxRelay
from ates.platform.tables import consumer_positions, dead_letters, inbox, outbox
from ates.platform.uow import UnitOfWork
from ates.schemas.accounts import AccountCreated
from ates.testing.events import account_created
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url)
    await migrations.upgrade("notifications", database)
    yield database
    await database.dispose()


@pytest.fixture
async def other_process_db(db: Database, postgres_url: str) -> AsyncIterator[Database]:
    """The same database through an engine of its own, as a second process would have."""
    database = Database(postgres_url)
    yield database
    await database.dispose()


def delivery(message: OutgoingMessage, attempt: int = 1) -> Delivery:
    return Delivery(body=message.body, subject=message.subject, attempt=attempt)


# --- migrations and types ------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
async def test_every_service_migrates_on_postgres(service: str, postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        await migrations.upgrade(service, database)
        await migrations.upgrade(service, database)  # again: nothing to do, no error
        head = ScriptDirectory.from_config(migrations.alembic_config(service)).get_current_head()
        assert await migrations.current(service, database) == head
        async with database.reader() as session:
            tables = set(
                (
                    await session.scalars(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                    )
                ).all()
            )
        assert {"outbox", "inbox", "dead_letters", "consumer_positions"} <= tables
    finally:
        await database.dispose()


async def test_column_types_fit_postgres(db: Database) -> None:
    async with db.reader() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'public'"
                )
            )
        ).all()
    types = {(table, column): kind for table, column, kind in rows}
    assert types["outbox", "id"] == "bigint"
    assert types["consumer_positions", "position"] == "bigint"
    for table, column in [
        ("outbox", "created_at"),
        ("outbox", "published_at"),
        ("inbox", "processed_at"),
        ("dead_letters", "created_at"),
    ]:
        assert types[table, column] == "timestamp with time zone", (table, column)


async def test_timestamps_come_back_as_the_same_instant_and_positions_hold_64_bits(
    db: Database,
) -> None:
    berlin_noon = datetime(2025, 3, 3, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    async with db.sessions() as session, session.begin():
        await session.execute(
            insert(consumer_positions).values(
                consumer="analytics", stream="tasks", position=2**40, updated_at=berlin_noon
            )
        )
    async with db.reader() as session:
        row = (await session.execute(select(consumer_positions))).one()
    assert row.position == 2**40
    assert row.updated_at == berlin_noon
    assert row.updated_at.utcoffset() == timedelta(0)  # UTC inside


# --- inbox: exactly once between processes -------------------------------------------


async def test_the_same_event_in_two_processes_at_once_is_applied_once(
    db: Database, other_process_db: Database
) -> None:
    applied: list[str] = []
    inside, go_on = asyncio.Event(), asyncio.Event()

    async def slow_handler(event: Event, uow: Any) -> None:
        applied.append(str(event.event_id))
        inside.set()
        await go_on.wait()  # hold the transaction open while the other one tries

    first = EventConsumer("notifications", db, {"AccountCreated": slow_handler}, default_registry())
    second = EventConsumer(
        "notifications", other_process_db, {"AccountCreated": slow_handler}, default_registry()
    )
    message = account_created()
    winner = asyncio.create_task(first.deliver_one(delivery(message)))
    await asyncio.wait_for(inside.wait(), 10)
    # The second insert of the inbox key waits for the first transaction, then violates
    # the primary key: rolled back and acknowledged, the handler never runs.
    losing = asyncio.create_task(second.deliver_one(delivery(message)))
    await eventually(lambda: _someone_waits_for_a_lock(db))
    go_on.set()
    loser = await losing
    assert await winner == Ack()
    assert loser == Ack()
    assert applied == [message.event_id]
    async with db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(inbox)) == 1


async def test_when_the_first_process_rolls_back_the_second_applies(
    db: Database, other_process_db: Database
) -> None:
    inside, go_on = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    async def failing_then_fine(event: Event, uow: Any) -> None:
        calls.append("call")
        if len(calls) == 1:
            inside.set()
            await go_on.wait()  # until the other process waits for this transaction
            raise RuntimeError("lost the connection to a friend")

    first = EventConsumer(
        "notifications", db, {"AccountCreated": failing_then_fine}, default_registry()
    )
    second = EventConsumer(
        "notifications", other_process_db, {"AccountCreated": failing_then_fine}, default_registry()
    )
    message = account_created()
    failing = asyncio.create_task(first.deliver_one(delivery(message)))
    await asyncio.wait_for(inside.wait(), 10)
    waiting = asyncio.create_task(second.deliver_one(delivery(message)))
    await eventually(lambda: _someone_waits_for_a_lock(db))
    go_on.set()
    assert await waiting == Ack()
    assert isinstance(await failing, Retry)
    assert calls == ["call", "call"]
    async with db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(inbox)) == 1


# --- dead letters --------------------------------------------------------------------


async def test_dead_letters_are_stored_and_replayed_after_a_fix(db: Database) -> None:
    broken = True
    applied: list[str] = []

    async def handler(event: Event, uow: Any) -> None:
        if broken:
            raise RuntimeError("a bug in the handler")
        applied.append(str(event.event_id))

    consumer = EventConsumer(
        "notifications", db, {"AccountCreated": handler}, default_registry(), max_deliveries=3
    )
    message = account_created()
    garbage = OutgoingMessage(str(uuid.uuid4()), "accounts", "AccountCreated", b"{oops")
    assert isinstance(await consumer.deliver_one(delivery(message, attempt=2)), Retry)
    assert await consumer.deliver_one(delivery(message, attempt=3)) == Ack()
    assert await consumer.deliver_one(delivery(garbage)) == Ack()

    letters = await deadletters.list_dead_letters(db)
    assert [(d.event_id, d.error.split(":")[0], d.attempts) for d in letters] == [
        (message.event_id, "failed", 3),
        (None, "invalid", 1),
    ]
    assert "a bug in the handler" in letters[0].error
    assert letters[0].created_at.tzinfo is not None

    broken = False
    assert await deadletters.replay(consumer, letters[0].id) == "applied"
    assert applied == [message.event_id]
    with pytest.raises(ValueError, match="already replayed"):
        await deadletters.replay(consumer, letters[0].id)
    await deadletters.discard(db, letters[1].id)
    assert await deadletters.list_dead_letters(db) == []
    async with db.reader() as session:
        statuses = (await session.scalars(select(dead_letters.c.status))).all()
    assert sorted(statuses) == ["discarded", "replayed"]


# --- outbox --------------------------------------------------------------------------


async def test_two_relays_on_one_database_publish_each_row_once(
    db: Database, other_process_db: Database, nats_url: str
) -> None:
    published: Counter[str] = Counter()
    brokers = []
    for _ in range(2):
        broker = _recording_broker(nats_url, published)
        await broker.connect()
        await broker.ensure_streams(["accounts"])
        brokers.append(broker)
    total = 3000
    async with UnitOfWork(db, "auth") as uow:
        await uow.emit_many([AccountCreated.from_data(_person()) for _ in range(total)])
        await uow.commit()
    relays = [
        OutboxRelay("auth", database, broker, batch_size=100)
        for database, broker in zip([db, other_process_db], brokers, strict=True)
    ]
    # Both relays drain the table at the same time, batch after batch.
    counts = await asyncio.gather(*[_drain(relay) for relay in relays])
    try:
        assert sum(counts) == total
        assert all(counts), f"one relay did all the work: {counts}"
        assert len(published) == total
        assert set(published.values()) == {1}, "a row was published by both relays"
        assert await relays[0].backlog() == 0
    finally:
        for broker in brokers:
            await broker.close()


async def test_outbox_ids_keep_growing_past_32_bits(db: Database) -> None:
    async with db.sessions() as session, session.begin():
        await session.execute(
            text("SELECT setval(pg_get_serial_sequence('outbox', 'id'), 2147483648)")
        )
    async with UnitOfWork(db, "auth") as uow:
        await uow.emit(AccountCreated.from_data(_person()))
        await uow.commit()
    async with db.reader() as session:
        assert await session.scalar(select(outbox.c.id)) == 2**31 + 1


# --- helpers -------------------------------------------------------------------------


async def _someone_waits_for_a_lock(db: Database) -> bool:
    """Whether a session of this test's database is blocked on a lock (a row, a key, an
    advisory lock) another transaction holds."""
    async with db.reader() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


def _person() -> dict[str, str]:
    return Event.from_json(account_created().body).data


async def _drain(relay: OutboxRelay) -> int:
    total = 0
    while published := await relay.publish_pending():
        total += published
        await asyncio.sleep(0)  # let the other relay in between batches
    return total


def _recording_broker(url: str, published: Counter[str]) -> Any:
    """The real NATS adapter, counting what the relay hands it (NATS's own dedup would
    hide a double publish from a consumer)."""
    broker = create_broker(url)
    real_publish = broker.publish

    async def publish(messages: Sequence[OutgoingMessage]) -> None:
        await real_publish(messages)
        published.update(m.event_id for m in messages)

    broker.publish = publish  # type: ignore[method-assign]
    return broker
