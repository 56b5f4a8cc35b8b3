"""The outbox: events written with the state change, published by the relay, never lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ates.platform import migrations
from ates.platform.broker import create_broker
from ates.platform.broker.nats.server import EmbeddedNats
from ates.platform.db import Database
from ates.platform.events import InvalidEvent
from ates.platform.outbox import OutboxRelay
from ates.platform.tables import outbox
from ates.platform.uow import UnitOfWork
from ates.schemas.accounts import AccountCreated
from tests.integration.broker_contract import Recorder, consuming
from tests.support import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
    await migrations.upgrade("auth", database)
    yield database
    await database.dispose()  # an engine left open outlives its event loop


def _person() -> dict[str, str]:
    return {
        "public_id": str(uuid.uuid4()),
        "username": "polly",
        "email": "p@example.com",
        "full_name": "Polly",
        "role": "worker",
    }


async def _unsent(db: Database) -> int:
    async with db.reader() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
            or 0
        )


async def test_an_invalid_event_raises_before_anything_is_written(db: Database) -> None:
    with pytest.raises(InvalidEvent, match="role"):
        async with UnitOfWork(db, "auth") as uow:
            await uow.emit_data("AccountCreated", {**_person(), "role": "pirate"})
            await uow.commit()
    async with db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(outbox)) == 0


async def test_a_rolled_back_transaction_leaves_no_event(db: Database) -> None:
    async with UnitOfWork(db, "auth") as uow:
        await uow.emit(AccountCreated.from_data(_person()))
        # no commit: the block ends, the transaction is rolled back
    async with db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(outbox)) == 0


async def test_relay_wakes_on_commit_and_rows_wait_while_broker_is_down(
    db: Database, nats_server: EmbeddedNats
) -> None:
    broker = create_broker(nats_server.url)
    await broker.connect()
    attempts = 0
    publish = broker.publish

    async def counting_publish(*args: Any, **kwargs: Any) -> Any:
        # the real adapter's publish, counting the relay's attempts
        nonlocal attempts
        attempts += 1
        return await publish(*args, **kwargs)

    broker.publish = counting_publish  # type: ignore[method-assign]
    relay = OutboxRelay("auth", db, broker, poll_seconds=30)  # polling alone would be slow
    recorder = Recorder()
    relay_task = asyncio.create_task(relay.run())
    try:
        async with consuming(broker, "watcher", recorder):
            async with UnitOfWork(db, "auth") as uow:
                first = await uow.emit(AccountCreated.from_data(_person()))
                await uow.commit()
            await eventually(lambda: _has(recorder, str(first.event_id)), timeout=5)

            port = nats_server.port
            await asyncio.to_thread(nats_server.stop)
            async with UnitOfWork(db, "auth") as uow:
                waiting = [await uow.emit(AccountCreated.from_data(_person())) for _ in range(3)]
                await uow.commit()
            tried = attempts
            await eventually(lambda: _true(attempts > tried))  # the relay woke and is trying
            assert await _unsent(db) == 3, "rows must wait while the broker is down"

            nats_server.requested_port = port
            await asyncio.to_thread(nats_server.start)
            for event in waiting:
                await eventually(partial(_has, recorder, str(event.event_id)), timeout=40)
            await eventually(lambda: _none_unsent(db), timeout=40)  # marked once confirmed
    finally:
        relay_task.cancel()
        await broker.close()


async def _true(value: bool) -> bool:
    return value


async def _none_unsent(db: Database) -> bool:
    return await _unsent(db) == 0


async def _has(recorder: Recorder, event_id: str) -> bool:
    return event_id in {e for e, _ in recorder.seen}
