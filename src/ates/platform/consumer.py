"""Consuming events: validate, dedup through the inbox, apply, or dead-letter.

``EventConsumer`` is the one place that decides what happens to a delivery:

- not an envelope, or not valid under its registered schema -> dead letter at once;
- a handler raises :class:`Rejected` (the event can never be applied) -> dead letter at once;
- any other error -> redelivered with backoff; after ``max_deliveries`` -> dead letter;
- the event id already in the inbox -> acknowledged and skipped.

The inbox row and the handler's writes share one transaction, so an event is applied
exactly once however often the broker delivers it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

import structlog
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from ates.platform.broker import Ack, Delivery, Outcome, Retry
from ates.platform.db import Database
from ates.platform.events import Event, InvalidEvent, MalformedEnvelope, Registry, UnknownEvent
from ates.platform.tables import dead_letters, inbox
from ates.platform.telemetry import EVENTS_CONSUMED
from ates.platform.uow import UnitOfWork

log = structlog.get_logger(__name__)

Handler = Callable[[Event, UnitOfWork], Awaitable[None]]


class Rejected(Exception):
    """Raised by a handler for an event that no retry can ever apply."""


class EventConsumer:
    def __init__(
        self,
        service: str,
        db: Database,
        handlers: Mapping[str, Handler],
        registry: Registry,
        *,
        max_deliveries: int = 5,
        backoff_seconds: float = 0.5,
        inbox_name: str | None = None,
    ) -> None:
        self.service = service
        self.inbox_name = inbox_name or service
        self.db = db
        self.handlers = dict(handlers)
        self.registry = registry
        self.max_deliveries = max_deliveries
        self.backoff_seconds = backoff_seconds

    async def __call__(self, delivery: Delivery) -> Outcome:
        try:
            event = self.registry.upcast(Event.from_json(delivery.body))
        except (MalformedEnvelope, InvalidEvent, UnknownEvent) as error:
            return await self._dead_letter(delivery, f"invalid: {error}", None)
        try:
            applied = await self.apply(event)
        except Rejected as error:
            return await self._dead_letter(delivery, f"rejected: {error}", event)
        except Exception as error:
            if delivery.attempt >= self.max_deliveries:
                log.exception("consumer.gave_up", service=self.service, event_name=event.event_name)
                return await self._dead_letter(delivery, f"failed: {error!r}", event)
            log.warning(
                "consumer.retry",
                service=self.service,
                event_name=event.event_name,
                attempt=delivery.attempt,
                error=repr(error),
            )
            EVENTS_CONSUMED.labels(self.service, event.event_name, "retry").inc()
            return Retry(self.backoff_seconds * 2 ** (delivery.attempt - 1))
        EVENTS_CONSUMED.labels(
            self.service, event.event_name, "applied" if applied else "duplicate"
        ).inc()
        return Ack()

    async def apply(self, event: Event) -> bool:
        """Apply an (upcast, valid) event once. False if it was applied before."""
        handler = self.handlers.get(event.event_name)
        async with UnitOfWork(self.db, producer=self.service, registry=self.registry) as uow:
            try:
                async with uow.session.begin_nested():
                    await uow.session.execute(
                        insert(inbox).values(
                            consumer=self.inbox_name,
                            event_id=str(event.event_id),
                            event_name=event.event_name,
                            processed_at=datetime.now(UTC),
                        )
                    )
            except IntegrityError:
                return False
            if handler is not None:
                await handler(event, uow)
            await uow.commit()
        return True

    async def _dead_letter(self, delivery: Delivery, reason: str, event: Event | None) -> Outcome:
        try:
            async with UnitOfWork(self.db, producer=self.service) as uow:
                await uow.session.execute(
                    insert(dead_letters).values(
                        consumer=self.inbox_name,
                        event_id=str(event.event_id) if event else None,
                        event_name=event.event_name if event else None,
                        subject=delivery.subject,
                        payload=delivery.body.decode("utf-8", errors="replace"),
                        error=reason[:4000],
                        attempts=delivery.attempt,
                        created_at=datetime.now(UTC),
                    )
                )
                await uow.commit()
        except Exception:
            # The dead-letter store itself failed: keep the message on the broker.
            log.exception("consumer.dead_letter_failed", service=self.service)
            return Retry(self.backoff_seconds * 4)
        log.error(
            "consumer.dead_lettered", service=self.service, subject=delivery.subject, reason=reason
        )
        EVENTS_CONSUMED.labels(
            self.service, event.event_name if event else "?", "dead_lettered"
        ).inc()
        return Ack()
