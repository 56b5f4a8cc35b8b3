"""The outbox relay: publishes committed outbox rows and marks them sent.

It wakes when a unit of work commits events (``Database.outbox_signal``) and also polls,
so rows written by another process (the CLI, a second replica) go out too. Woken, it
lingers a few milliseconds first, so that the commits of a busy moment leave as one
pipelined publish and one "sent" update instead of one round each (a request commits
one or two events; a relay round costs a read, a publish and a write transaction).
Rows are marked sent, never tracked by a high-water mark: ids can commit out of order.
If the broker is down the rows wait; nothing is lost and nothing is marked sent that the
broker did not confirm. On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets several relays
share the table without publishing the same row at the same time.

With tracing on, each event's publish is a span in the trace the event carries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.broker import Broker, BrokerUnavailable, OutgoingMessage
from ates.platform.db import Database
from ates.platform.events import Registry, default_registry
from ates.platform.tables import outbox
from ates.platform.telemetry import EVENTS_PUBLISHED, PUBLISH_BATCH_SIZE
from ates.platform.tracing import OFF, Tracing, publishing

log = structlog.get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        service: str,
        db: Database,
        broker: Broker,
        *,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        max_backoff_seconds: float = 10.0,
        linger_seconds: float = 0.01,
        registry: Registry | None = None,
        tracing: Tracing | None = None,
        produces: Sequence[str] = (),
    ) -> None:
        self.service = service
        self.tracing = tracing or OFF
        self.registry = registry or default_registry()
        self._batch_size = PUBLISH_BATCH_SIZE.labels(service)
        # event name -> its counter's child; the events of the domains the service
        # produces exist from the start, at 0
        self._published: dict[str, Any] = {
            name: EVENTS_PUBLISHED.labels(service, name)
            for name in self.registry.names()
            if self.registry.domain_of(name) in produces
        }
        self.db = db
        self.broker = broker
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.linger_seconds = linger_seconds

    async def run(self) -> None:
        """Publish forever (until cancelled)."""
        backoff = self.poll_seconds
        while True:
            try:
                published = await self.publish_pending()
                backoff = self.poll_seconds
                if published >= self.batch_size:
                    continue  # a full batch: more is waiting
                if published:
                    await asyncio.sleep(self.linger_seconds)
                    continue
            except BrokerUnavailable as error:
                log.warning("outbox.broker_unavailable", service=self.service, error=str(error))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
                continue
            except Exception:
                log.exception("outbox.relay_error", service=self.service)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
                continue
            self.db.outbox_signal.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.db.outbox_signal.wait(), self.poll_seconds)
                await asyncio.sleep(self.linger_seconds)

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows; returns how many were published."""
        query = (
            select(
                outbox.c.id,
                outbox.c.event_id,
                outbox.c.domain,
                outbox.c.event_name,
                outbox.c.payload,
            )
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.id)
            .limit(self.batch_size)
        )
        if self.db.is_sqlite:
            # One process owns a SQLite file: read without a write lock, publish, then mark.
            # Holding BEGIN IMMEDIATE across a publish would stall every writer.
            async with self.db.reader() as session:
                rows = (await session.execute(query)).all()
            if rows:
                await self._publish(rows)
                async with self.db.write_turn(), self.db.sessions() as session, session.begin():
                    await self._mark_sent(session, rows)
        else:
            async with self.db.sessions() as session, session.begin():
                rows = (await session.execute(query.with_for_update(skip_locked=True))).all()
                if rows:
                    await self._publish(rows)
                    await self._mark_sent(session, rows)
        if not rows:
            return 0
        self._count(rows)
        return len(rows)

    async def _publish(self, rows: Sequence[Any]) -> None:
        envelopes = [orjson.loads(row.payload) for row in rows]
        messages = [
            OutgoingMessage(
                event_id=row.event_id,
                domain=row.domain,
                event_name=row.event_name,
                body=row.payload.encode(),
                key=self.registry.aggregate_key(row.event_name, envelope.get("data") or {}),
            )
            for row, envelope in zip(rows, envelopes, strict=True)
        ]
        if not self.tracing.enabled:
            await self.broker.publish(messages)
            return
        traces = [envelope.get("trace") for envelope in envelopes]
        with publishing(self.tracing, self.broker, messages, traces):
            await self.broker.publish(messages)

    def _count(self, rows: Sequence[Any]) -> None:
        tally: dict[str, int] = {}
        for row in rows:
            tally[row.event_name] = tally.get(row.event_name, 0) + 1
        for name, count in tally.items():
            child = self._published.get(name)
            if child is None:
                child = self._published[name] = EVENTS_PUBLISHED.labels(self.service, name)
            child.inc(count)
        self._batch_size.observe(len(rows))

    @staticmethod
    async def _mark_sent(session: AsyncSession, rows: Sequence[Any]) -> None:
        await session.execute(
            update(outbox)
            .where(outbox.c.id.in_([row.id for row in rows]))
            .values(published_at=datetime.now(UTC))
        )

    async def backlog(self) -> int:
        async with self.db.reader() as session:
            count = await session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        return int(count or 0)
