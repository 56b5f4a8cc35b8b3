"""The database contract on PostgreSQL, plus what only PostgreSQL promises: its column
types, outbox ids past 32 bits, and several relays sharing one outbox.

Each test has databases of its own on the suite's server (``tests.backends``), dropped
afterwards; without a server the tests skip, under ``CI=true`` they fail."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import select, text

from ates.platform.broker import OutgoingMessage, create_broker
from ates.platform.db import Database
from ates.platform.events import Event
from ates.platform.outbox import OutboxRelay
from ates.platform.tables import outbox
from ates.platform.uow import UnitOfWork
from ates.schemas.accounts import AccountCreated
from ates.testing.events import account_created
from tests.integration.database_contract import DatabaseContract, LockWatch, MakeUrl

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


class PostgresLockWatch:
    """A session of the watched database blocked on a lock (a row, a key, an advisory
    lock) that another transaction holds, as PostgreSQL's activity view says."""

    def __init__(self) -> None:
        self.db: Database | None = None

    def watch(self, db: Database) -> None:
        self.db = db

    async def waiting(self) -> bool:
        assert self.db is not None, "nothing watched"
        async with self.db.reader() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        return bool(waiting)


class TestPostgresDatabase(DatabaseContract):
    @pytest.fixture
    def make_database_url(self, make_postgres_database: Callable[[], Awaitable[str]]) -> MakeUrl:
        return make_postgres_database

    @pytest.fixture
    def lock_watch(self) -> LockWatch:
        return PostgresLockWatch()

    # --- PostgreSQL only ------------------------------------------------------------

    async def test_column_types_fit_postgres(self, db: Database) -> None:
        async with db.reader() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT table_name, column_name, data_type "
                        "FROM information_schema.columns WHERE table_schema = 'public'"
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

    async def test_outbox_ids_keep_growing_past_32_bits(self, db: Database) -> None:
        async with db.sessions() as session, session.begin():
            await session.execute(
                text("SELECT setval(pg_get_serial_sequence('outbox', 'id'), 2147483648)")
            )
        async with UnitOfWork(db, "auth") as uow:
            await uow.emit(AccountCreated.from_data(_person()))
            await uow.commit()
        async with db.reader() as session:
            assert await session.scalar(select(outbox.c.id)) == 2**31 + 1

    async def test_two_relays_on_one_database_publish_each_row_once(
        self, db: Database, other_process_db: Database, nats_url: str
    ) -> None:
        """``FOR UPDATE SKIP LOCKED``: replicas' relays share the outbox (on SQLite one
        process owns the file, and its one relay)."""
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


def _person() -> dict[str, Any]:
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
