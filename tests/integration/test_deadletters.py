"""The dead-letter store: replay after a fix, into the inbox that gave up; discard."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from ates.platform import deadletters, migrations
from ates.platform.consumer import EventConsumer
from ates.platform.db import Database
from ates.platform.events import Event, default_registry
from ates.platform.tables import dead_letters, inbox

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'notifications.db'}")
    await migrations.upgrade("notifications", database)
    yield database
    await database.dispose()


async def _letter(db: Database, consumer: str) -> tuple[int, Event]:
    event = Event(
        event_name="AccountDeactivated",
        event_version=1,
        producer="auth",
        data={"public_id": str(uuid.uuid4())},
    )
    async with db.sessions() as session, session.begin():
        connection = await session.connection()
        result = await connection.execute(
            insert(dead_letters).values(
                consumer=consumer,
                event_id=str(event.event_id),
                event_name=event.event_name,
                subject="accounts.AccountDeactivated",
                payload=event.to_json(),
                error="failed: RuntimeError('bug')",
                attempts=5,
                created_at=datetime.now(UTC),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        letter_id = int(key[0])
    return letter_id, event


async def test_replay_applies_once_into_the_inbox_of_the_consumer_that_gave_up(
    db: Database,
) -> None:
    applied: list[Any] = []

    async def fixed_handler(event: Event, uow: Any) -> None:
        applied.append(event.event_id)

    consumer = EventConsumer(
        "notifications", db, {"AccountDeactivated": fixed_handler}, default_registry()
    )
    letter_id, event = await _letter(db, consumer="notifications-g2")

    assert await deadletters.replay(consumer, letter_id) == "applied"
    assert applied == [event.event_id]
    async with db.reader() as session:
        owners = (await session.scalars(select(inbox.c.consumer))).all()
    assert owners == ["notifications-g2"]
    letter = await deadletters.get_dead_letter(db, letter_id)
    assert letter is not None and letter.status == "replayed"
    with pytest.raises(ValueError, match="already replayed"):
        await deadletters.replay(consumer, letter_id)


async def test_a_replay_that_fails_again_stays_pending_with_the_new_error(db: Database) -> None:
    async def still_broken(event: Event, uow: Any) -> None:
        raise RuntimeError("still broken")

    consumer = EventConsumer(
        "notifications", db, {"AccountDeactivated": still_broken}, default_registry()
    )
    letter_id, _ = await _letter(db, consumer="notifications")
    with pytest.raises(RuntimeError, match="still broken"):
        await deadletters.replay(consumer, letter_id)
    letter = await deadletters.get_dead_letter(db, letter_id)
    assert letter is not None
    assert (letter.status, letter.error) == (
        "pending",
        "replay failed: RuntimeError('still broken')",
    )
    await deadletters.discard(db, letter_id)
    assert [item.id for item in await deadletters.list_dead_letters(db, "discarded")] == [letter_id]
    assert await deadletters.list_dead_letters(db) == []


async def test_the_dead_letter_list_prints_json_for_scripts(db: Database, tmp_path: Path) -> None:
    import asyncio
    import json

    from typer.testing import CliRunner

    from ates.cli import app

    letter_id, event = await _letter(db, "notifications")
    words = ["dlq", "list", "notifications", "--json", "--data-dir", str(tmp_path)]
    listed = await asyncio.to_thread(CliRunner().invoke, app, words)
    assert listed.exit_code == 0, listed.output
    (found,) = json.loads(listed.stdout)
    assert (found["service"], found["id"], found["event_id"]) == (
        "notifications",
        letter_id,
        str(event.event_id),
    )
