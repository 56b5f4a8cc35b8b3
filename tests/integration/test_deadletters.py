"""``ates dlq list --json``: the dead letters of a service for scripts. (Replay and discard
are the database contract's: ``tests/integration/database_contract/messaging.py``.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ates.platform import migrations
from ates.platform.db import Database
from tests.support import store_dead_letter

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'notifications.db'}")
    await migrations.upgrade("notifications", database)
    yield database
    await database.dispose()


async def test_the_dead_letter_list_prints_json_for_scripts(db: Database, tmp_path: Path) -> None:
    import asyncio
    import json

    from typer.testing import CliRunner

    from ates.cli import app

    letter_id, event = await store_dead_letter(db, "notifications")
    words = ["dlq", "list", "notifications", "--json", "--data-dir", str(tmp_path)]
    listed = await asyncio.to_thread(CliRunner().invoke, app, words)
    assert listed.exit_code == 0, listed.output
    (found,) = json.loads(listed.stdout)
    assert (found["service"], found["id"], found["event_id"]) == (
        "notifications",
        letter_id,
        str(event.event_id),
    )
