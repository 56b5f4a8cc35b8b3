"""NATS JetStream adapter.

One stream per producing domain (``ACCOUNTS`` holds ``accounts.>``), file storage, kept
by size and age for rebuilds. One durable pull consumer per (group, stream): each service
keeps its own position, and processes of the same service share it. Publishes carry the
event id as ``Nats-Msg-Id`` so the server drops duplicates inside its window; consumers
dedup the rest through their inbox (see PITFALLS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from ates.platform.broker.base import (
    Ack,
    BatchHandler,
    Broker,
    BrokerUnavailable,
    Delivery,
    OutgoingMessage,
    consume_in_sessions,
    stop_if_cancelled,
    subject_for,
)

log = structlog.get_logger(__name__)

DAY = 24 * 3600


def stream_name(domain: str) -> str:
    return domain.upper()


class NatsBroker(Broker):
    def __init__(
        self,
        url: str,
        *,
        max_age_days: int = 365,
        max_bytes: int = 10 * 1024**3,
        duplicate_window_seconds: float = 120,
        ack_wait_seconds: float = 30,
        publish_timeout: float = 10,
        handler_error_delay: float = 1.0,
        linger_seconds: float = 0.01,
    ) -> None:
        self.url = url
        self._max_age = max_age_days * DAY
        self._max_bytes = max_bytes
        self._duplicate_window = duplicate_window_seconds
        self._ack_wait = ack_wait_seconds
        self._publish_timeout = publish_timeout
        self._handler_error_delay = handler_error_delay
        self._linger = linger_seconds
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._reconnects = 0
        self._closing = False
        self._known_streams: set[str] = set()

    # --- connection -----------------------------------------------------------------

    async def connect(self) -> None:
        if self._nc is not None and self._nc.is_connected:
            return
        self._closing = False
        try:
            self._nc = await nats.connect(
                self.url,
                name="ates",
                connect_timeout=2,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                reconnected_cb=self._on_reconnected,
                disconnected_cb=self._on_disconnected,
                error_cb=self._on_error,
                allow_reconnect=True,
            )
        except (TimeoutError, OSError, nats.errors.Error) as error:
            raise BrokerUnavailable(f"cannot reach NATS at {self.url}: {error}") from error
        self._js = self._nc.jetstream(timeout=self._publish_timeout)

    async def close(self) -> None:
        self._closing = True
        if self._nc is not None:
            # Not drain(): it waits up to 30 s on pull subscriptions. Every publish we
            # care about was confirmed already; flush sends the acks still buffered.
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=2)
            with contextlib.suppress(Exception):
                await self._nc.close()
        self._nc = self._js = None

    async def _on_reconnected(self) -> None:
        self._reconnects += 1
        log.info("broker.reconnected", url=self.url)

    async def _on_disconnected(self) -> None:
        if not self._closing:  # our own close() is no news
            log.warning("broker.disconnected", url=self.url)

    async def _on_error(self, error: Exception) -> None:
        log.warning("broker.error", error=str(error))

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise BrokerUnavailable("not connected")
        return self._js

    # --- topology -------------------------------------------------------------------

    async def ensure_streams(self, domains: Iterable[str]) -> None:
        for domain in domains:
            name = stream_name(domain)
            config = StreamConfig(
                name=name,
                subjects=[f"{domain}.>"],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_age=self._max_age,
                max_bytes=self._max_bytes,
                discard=DiscardPolicy.OLD,
                duplicate_window=self._duplicate_window,
            )
            try:
                try:
                    await self.js.stream_info(name)
                    await self.js.update_stream(config)
                except nats.js.errors.NotFoundError:
                    await self.js.add_stream(config)
            except (TimeoutError, nats.errors.Error) as error:
                raise BrokerUnavailable(f"cannot create stream {name}: {error}") from error
            self._known_streams.add(domain)

    # --- publishing -----------------------------------------------------------------

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        missing = {m.domain for m in messages} - self._known_streams
        if missing:
            await self.ensure_streams(missing)
        try:
            futures = [
                await self.js.publish_async(
                    m.subject,
                    m.body,
                    headers={"Nats-Msg-Id": m.event_id},
                    stream=stream_name(m.domain),
                    wait_stall=self._publish_timeout,
                )
                for m in messages
            ]
            await asyncio.wait_for(asyncio.gather(*futures), timeout=self._publish_timeout)
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise BrokerUnavailable(f"publish not confirmed: {error!r}") from error

    # --- consuming ------------------------------------------------------------------

    async def _bind(self, group: str, domain: str, event_names: Sequence[str] | None) -> Any:
        subjects = (
            [f"{domain}.>"]
            if event_names is None
            else sorted(subject_for(domain, name) for name in event_names)
        )
        config = ConsumerConfig(
            name=group,
            durable_name=group,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            max_deliver=-1,  # the platform dead-letters after its own count
            max_ack_pending=1000,
            filter_subjects=subjects if len(subjects) > 1 else None,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
        )
        await self.js.add_consumer(stream_name(domain), config)
        return await self.js.pull_subscribe_bind(durable=group, stream=stream_name(domain))

    async def consume(
        self,
        group: str,
        domain: str,
        event_names: Sequence[str] | None,
        handler: BatchHandler,
        *,
        batch_size: int = 64,
    ) -> None:
        async def session() -> None:
            await self._consume_until_reconnect(group, domain, event_names, handler, batch_size)

        await consume_in_sessions(
            session,
            lost=(nats.errors.Error, BrokerUnavailable, OSError),
            delay=0.5,
            group=group,
            domain=domain,
        )

    async def _consume_until_reconnect(
        self,
        group: str,
        domain: str,
        event_names: Sequence[str] | None,
        handler: BatchHandler,
        batch_size: int,
    ) -> None:
        """Bind and deliver until the client reconnects: nats-py #504, a pull subscription
        can go deaf after a server restart, so every reconnect binds again."""
        await self.ensure_streams([domain])
        bound_at = self._reconnects
        subscription = await self._bind(group, domain, event_names)
        while bound_at == self._reconnects:
            stop_if_cancelled()
            try:
                # Returns at once with whatever is waiting (up to batch_size), or
                # waits up to the timeout for the first message.
                messages = await subscription.fetch(batch_size, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                continue  # nothing waiting (nats-py #418)
            await self._deliver(messages, handler)
            if len(messages) < batch_size:
                # Not a backlog: let a few milliseconds of arrivals gather, so that a
                # busy consumer applies tens of events per transaction, not one.
                await asyncio.sleep(self._linger)
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()

    async def _deliver(self, messages: Sequence[Msg], handler: BatchHandler) -> None:
        deliveries = []
        for message in messages:
            meta = message.metadata
            deliveries.append(
                Delivery(
                    body=message.data,
                    subject=message.subject,
                    attempt=meta.num_delivered,
                    position=meta.sequence.stream,
                )
            )
        try:
            outcomes = await handler(deliveries)
        except Exception:
            # Handlers answer with outcomes; one that raises is a bug or a lost database.
            # Nothing is acknowledged: the batch comes again, the inbox skips what was
            # applied.
            log.exception("broker.handler_raised", domain=messages[0].subject)
            for message in messages:
                await message.nak(delay=self._handler_error_delay)
            return
        for message, outcome in zip(messages, outcomes, strict=True):
            if isinstance(outcome, Ack):
                await message.ack()
            else:
                await message.nak(delay=outcome.delay)

    async def delete_group(self, group: str, domain: str) -> None:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self.js.delete_consumer(stream_name(domain), group)

    async def log_size(self, domain: str) -> int:
        try:
            info = await self.js.stream_info(stream_name(domain))
        except nats.js.errors.NotFoundError:
            return 0
        return int(info.state.messages)

    async def lag(self, group: str, domain: str) -> int | None:
        # Waiting to be delivered, plus delivered and not yet acknowledged.
        try:
            info = await self.js.consumer_info(stream_name(domain), group)
        except nats.js.errors.NotFoundError:
            return None
        except (TimeoutError, nats.errors.Error) as error:
            raise BrokerUnavailable(f"cannot read consumer {group}: {error!r}") from error
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
