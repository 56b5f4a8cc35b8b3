"""``ates dlq list --json``: the dead letters of a service for scripts. (Replay and discard
are the database contract's: ``tests/integration/database_contract/messaging.py``.)"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from ates.platform import migrations
from ates.platform.db import Database
from ates.platform.events import Event
from ates.platform.tables import dead_letters

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
