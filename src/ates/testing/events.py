"""Events for tests and benchmarks: a broker connection with every stream, publishing
events as a relay does, and a valid ``AccountCreated`` of a new person."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ates.platform.broker import Broker, OutgoingMessage, create_broker
from ates.platform.events import Event, default_registry


@asynccontextmanager
async def connected_broker(url: str) -> AsyncIterator[Broker]:
    broker = create_broker(url)
    await broker.connect()
    try:
        await broker.ensure_streams(default_registry().domains())
        yield broker
    finally:
        await broker.close()


def message(event: Event, msg_id: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(
        event_id=msg_id or str(event.event_id),
        domain=default_registry().domain_of(event.event_name),
        event_name=event.event_name,
        body=event.to_json().encode(),
    )


async def publish(
    broker: Broker,
    events: Sequence[Event],
    *,
    rng: random.Random | None = None,
    duplicates: float = 0.0,
) -> None:
    """Publish ``events``, shuffled by ``rng`` (so a TaskCompleted may come before its
    TaskCreated), with a share of them published twice under another broker dedup id,
    as a relay does that republishes after the broker's dedup window."""
    messages = [message(event) for event in events]
    if rng is not None:
        messages += [
            message(event, f"{event.event_id}-again")
            for event in events
            if rng.random() < duplicates
        ]
        rng.shuffle(messages)
    for start in range(0, len(messages), 250):
        await broker.publish(messages[start : start + 250])


def account_created(
    event_id: str | None = None, username: str | None = None, key: str | None = None
) -> OutgoingMessage:
    """A valid ``AccountCreated`` of a new person, keyed by that person unless ``key``
    says otherwise (a partitioned log keeps order only within one key)."""
    person = str(uuid.uuid4())
    given: dict[str, Any] = {"event_id": uuid.UUID(event_id)} if event_id else {}
    event = Event(
        event_name="AccountCreated",
        event_version=1,
        producer="test",
        data={
            "public_id": person,
            "username": username or f"u{person[:8]}",
            "email": "u@example.com",
            "full_name": "U",
            "role": "worker",
        },
        **given,
    )
    return OutgoingMessage(
        str(event.event_id),
        "accounts",
        "AccountCreated",
        event.to_json().encode(),
        key=key or person,
    )
