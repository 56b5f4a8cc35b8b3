"""Throughput of the RabbitMQ adapter on this machine's server.

    .venv/bin/python bench/rabbitmq_bench.py [--events 10000] [--postgres]

Measures, on a throwaway virtual host (needs ``rabbitmqctl``):

1. publish: confirmed publishes in relay-sized batches (500), events/s;
2. consume: a live group applying every event through the platform consumer (inbox row
   + commit per event) on SQLite, or on a throwaway PostgreSQL database with --postgres;
3. fill: a new group created after the fact, filled from the stream (history copy) and
   consumed, events/s from start to the last event applied.

Results go to docs/benchmarks.md by hand (section "RabbitMQ adapter").
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from ates.platform import migrations
from ates.platform.broker import Broker, create_broker
from ates.platform.consumer import EventConsumer
from ates.platform.db import Database
from ates.platform.events import Event, default_registry
from ates.platform.uow import UnitOfWork
from ates.testing.events import account_created
from ates.testing.servers import (
    POSTGRES_DSN,
    RABBITMQ_URL,
    throwaway_databases,
    throwaway_vhost,
)


async def consume_all(
    broker: Broker, group: str, db: Database, total: int
) -> tuple[float, Callable[[], Awaitable[None]]]:
    """Start consuming; returns (start time, wait-until-all-applied)."""
    done = asyncio.Event()
    applied = 0

    def count(event: Event | None, status: str) -> None:
        nonlocal applied
        if status == "applied":
            applied += 1
            if applied >= total:
                done.set()

    async def noted(event: Event, uow: UnitOfWork) -> None:
        """Applying is recording the event in the inbox (the consumer does that)."""

    consumer = EventConsumer(
        "notifications",
        db,
        {"AccountCreated": noted},
        default_registry(),
        inbox_name=group,
        observer=count,
    )
    started = time.perf_counter()
    task = asyncio.create_task(broker.consume(group, "accounts", ["AccountCreated"], consumer))

    async def wait() -> None:
        try:
            await asyncio.wait_for(done.wait(), 600)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    return started, wait


async def measure(database_url: str, broker_url: str, events: int) -> tuple[float, float, float]:
    """Seconds to publish ``events``, to apply them live, and to fill a new group."""
    db = Database(database_url)
    broker = create_broker(broker_url)
    try:
        await migrations.upgrade("notifications", db)
        await broker.connect()
        await broker.ensure_streams(["accounts"])
        messages = [account_created() for _ in range(events)]

        started, live_done = await consume_all(broker, "live", db, events)
        await asyncio.sleep(0.5)  # the group is bound before the first publish
        publish_start = time.perf_counter()
        for i in range(0, events, 500):
            await broker.publish(messages[i : i + 500])
        publish_seconds = time.perf_counter() - publish_start
        await live_done()
        live_seconds = time.perf_counter() - publish_start

        started, fill_done = await consume_all(broker, "late", db, events)
        await fill_done()
        fill_seconds = time.perf_counter() - started
    finally:
        await broker.close()
        await db.dispose()
    return publish_seconds, live_seconds, fill_seconds


async def main(events: int, postgres: bool) -> None:
    tag = uuid.uuid4().hex[:8]
    databases = {"bench": f"ates_bench_{tag}"} if postgres else {}
    async with (
        throwaway_vhost(RABBITMQ_URL, f"ates-bench-{tag}") as broker_url,
        throwaway_databases(POSTGRES_DSN, databases) as database_urls,
    ):
        with tempfile.TemporaryDirectory() as tmp:
            url = database_urls.get("bench", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
            publish_seconds, live_seconds, fill_seconds = await measure(url, broker_url, events)
    store = "PostgreSQL" if postgres else "SQLite"
    print(f"events: {events}, consumer database: {store}")
    print(f"publish (confirmed, batches of 500): {events / publish_seconds:,.0f} events/s")
    print(f"live group, publish to last applied:  {events / live_seconds:,.0f} events/s")
    print(f"new group filled from the stream:     {events / fill_seconds:,.0f} events/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--postgres", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.postgres))
