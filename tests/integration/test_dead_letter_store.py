"""``ates dlq list`` over every service (real SQLite databases in a data directory, the
real command). What a resolution records is the database contract's
(``tests/integration/database_contract/messaging.py``)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from ates.cli import app
from ates.config import Settings
from ates.platform import migrations
from ates.platform.db import Database
from ates.platform.tables import dead_letters

pytestmark = pytest.mark.integration


async def _letter(db: Database, consumer: str, event_name: str | None, event_id: str | None) -> int:
    async with db.sessions() as session, session.begin():
        connection = await session.connection()
        result = await connection.execute(
            insert(dead_letters).values(
                consumer=consumer,
                event_id=event_id,
                event_name=event_name,
                subject=f"tasks.{event_name or 'TaskCreated'}",
                payload="{}",
                error="invalid: data.title: 42 is not of type 'string'",
                kind="invalid",
                attempts=1,
                created_at=datetime.now(UTC),
            )
        )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


async def test_dlq_list_without_a_service_lists_every_service(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    seeded = {}
    for service, name in (("billing", "TaskCreated"), ("analytics", None)):
        db = Database(settings.database_url(service))
        try:
            await migrations.upgrade(service, db)
            event_id = str(uuid.uuid4()) if name else None
            seeded[service] = (await _letter(db, service, name, event_id), event_id)
        finally:
            await db.dispose()

    words = ["dlq", "list", "--data-dir", str(tmp_path)]
    listed = await asyncio.to_thread(CliRunner().invoke, app, words, env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.stdout.splitlines() if "│" in line and "service" not in line]
    assert len(rows) == 2, listed.stdout
    billing_row = next(row for row in rows if "billing" in row)
    billing_id = seeded["billing"][1]
    assert billing_id is not None and billing_id in billing_row and "TaskCreated" in billing_row
    assert any("analytics" in row and "?" in row for row in rows)
    for quiet in ("auth", "tasks", "notifications"):
        assert not any(quiet in row for row in rows)

    one = await asyncio.to_thread(
        CliRunner().invoke, app, ["dlq", "list", "tasks", "--data-dir", str(tmp_path)]
    )
    assert "tasks: no pending dead letters" in one.stdout
