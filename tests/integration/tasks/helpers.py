"""Helpers for the tasks tests: announce people the way auth does, read the outbox."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from ates.platform.db import Database
from ates.platform.events import Event
from ates.platform.runtime import Runtime
from ates.platform.tables import outbox


def account_event(name: str, data: dict[str, Any], at: datetime | None = None) -> Event:
    return Event(
        event_name=name,
        event_version=1,
        data=data,
        producer="auth",
        event_time=at or datetime.now(UTC),
    )


def person_data(role: str = "worker", name: str = "Polly Parrot", **extra: Any) -> dict[str, Any]:
    public_id = extra.pop("public_id", None) or str(uuid.uuid4())
    username = name.split()[0].lower() + public_id[:4]
    return {
        "public_id": public_id,
        "username": username,
        "email": f"{username}@example.com",
        "full_name": name,
        "role": role,
        **extra,
    }


async def announce(
    runtime: Runtime, name: str, data: dict[str, Any], at: datetime | None = None
) -> None:
    """Apply an account event through the service's real consumer path (inbox + handler)."""
    event = account_event(name, data, at)
    runtime.registry.validate(name, 1, data)
    assert await runtime.consumer().apply(event)


async def hire(runtime: Runtime, role: str = "worker", name: str = "Polly Parrot") -> str:
    data = person_data(role, name)
    await announce(runtime, "AccountCreated", data)
    return str(data["public_id"])


async def outbox_events(db: Database, event_name: str | None = None) -> list[dict[str, Any]]:
    """Envelopes in the outbox, in the order they were written."""
    query = select(outbox.c.payload).order_by(outbox.c.id)
    if event_name is not None:
        query = query.where(outbox.c.event_name == event_name)
    async with db.reader() as session:
        return [json.loads(payload) for payload in (await session.scalars(query)).all()]
