"""The ceilings of this machine, measured in the same run as the system's figures.

(a) Raw JetStream publishes to a fresh bundled nats-server started exactly as aTES starts
    it (``EmbeddedNats``: file storage, ``sync_interval: always``), from one nats-py
    client, pipelined (``publish_async``, thousands in flight), each message the size of
    a real event and carrying a ``Nats-Msg-Id`` like the relay's.
(b) Publish → consume through the same server: one client publishes as in (a) while a
    second one pulls (``fetch`` batches) and acknowledges each message; the rate is
    messages from the first publish to the last acknowledgement.
(c) SQLite in WAL mode with ``synchronous=FULL`` (stdlib ``sqlite3``): one-row
    transactions, each committed (and fsynced) on its own.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import nats
from nats.js.api import StorageType, StreamConfig

from ates.platform.broker.nats.server import EmbeddedNats

# An event of the size the system sends (a TransactionApplied envelope is ~600 bytes).
PAYLOAD = b'{"event_name":"TransactionApplied","data":{"pad":"' + b"x" * 540 + b'"}}'
MAX_PENDING = 4000


async def _publish_all(js: object, subject: str, count: int) -> None:
    futures = []
    for _ in range(count):
        futures.append(
            await js.publish_async(  # type: ignore[attr-defined]
                subject,
                PAYLOAD,
                headers={"Nats-Msg-Id": uuid.uuid4().hex},
                wait_stall=30,
            )
        )
    await asyncio.gather(*futures)


async def jetstream(data_dir: Path, messages: int) -> tuple[float, float]:
    """(publishes per second, publish→consume messages per second)."""
    with EmbeddedNats(data_dir / "nats") as server:
        producer = await nats.connect(server.url, name="ceiling-producer")
        consumer = await nats.connect(server.url, name="ceiling-consumer")
        try:
            js = producer.jetstream(publish_async_max_pending=MAX_PENDING)
            await js.add_stream(
                StreamConfig(name="CEILING", subjects=["ceiling.>"], storage=StorageType.FILE)
            )
            await _publish_all(js, "ceiling.warmup", 200)
            started = time.perf_counter()
            await _publish_all(js, "ceiling.publish", messages)
            publish_rate = messages / (time.perf_counter() - started)

            pull = await consumer.jetstream().pull_subscribe("ceiling.flow", durable="ceiling")
            received = 0

            async def drain() -> None:
                nonlocal received
                while received < messages:
                    try:
                        batch = await pull.fetch(256, timeout=5)
                    except (TimeoutError, nats.errors.TimeoutError):
                        continue
                    for message in batch:
                        await message.ack()
                    received += len(batch)
                await consumer.flush()

            started = time.perf_counter()
            await asyncio.gather(_publish_all(js, "ceiling.flow", messages), drain())
            flow_rate = messages / (time.perf_counter() - started)
        finally:
            await producer.close()
            await consumer.close()
    return publish_rate, flow_rate


def sqlite_commits(data_dir: Path, seconds: float) -> float:
    """One-row transactions committed per second (WAL, ``synchronous=FULL``)."""
    path = data_dir / "ceiling.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        commits = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO events (body) VALUES (?)", (PAYLOAD,))
            db.execute("COMMIT")
            commits += 1
        return commits / (time.perf_counter() - started)
    finally:
        db.close()


async def measure(
    messages: int, sqlite_seconds: float, parent: Path | None = None
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ates-ceiling-", dir=parent) as folder:
        publish, flow = await jetstream(Path(folder), messages)
        commits = await asyncio.to_thread(sqlite_commits, Path(folder), sqlite_seconds)
    return {
        "jetstream_publishes_per_s": round(publish),
        "jetstream_publish_consume_per_s": round(flow),
        "sqlite_commits_per_s": round(commits),
    }
