"""RabbitMQ adapter (aio-pika) of the broker port.

Topology in :mod:`~ates.platform.broker.rabbitmq.topology`; how a new group gets the
retained history in :mod:`~ates.platform.broker.rabbitmq.groups`.

- Publishing: persistent messages to the domain's topic exchange, ``mandatory`` and with
  publisher confirms; ``publish`` returns only when RabbitMQ confirmed every message
  (quorum and stream queues confirm after replication), else raises BrokerUnavailable.
- Consuming: batches of what the prefetch window brought in; manual acks, sent only after
  the handler returned (after its commit).
  ``Retry(delay)`` publishes a confirmed copy to the group's delayed-retry queue for that
  delay and then acks the original; the copy comes back after the delay with its attempt
  count in a header. ``attempt`` = that header (1 if absent) + RabbitMQ's
  ``x-delivery-count`` (returns after a crash or a lost connection). We count ourselves
  because in RabbitMQ 4.3 a nack no longer increments the delivery count (PITFALLS.md).
- Connection loss ("channel is closed", a restart): plain, non-robust aio-pika objects and
  our own loop. Every consumer reconnects, sets its group up again and resumes; every
  publish on a dead connection raises BrokerUnavailable and the next one reconnects.
  aio-pika's robust objects are avoided on purpose (PITFALLS: aio-pika #563, #570).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import aio_pika
import structlog
from aio_pika import DeliveryMode, ExchangeType, Message
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aio_pika.exceptions import (
    CONNECTION_EXCEPTIONS,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
)

from ates.platform.broker.base import (
    BatchHandler,
    Broker,
    BrokerUnavailable,
    Delivery,
    Outcome,
    OutgoingMessage,
    Retry,
    consume_in_sessions,
    subject_for,
)
from ates.platform.broker.rabbitmq import topology
from ates.platform.broker.rabbitmq.groups import prepare_group
from ates.platform.broker.rabbitmq.stream import copy_of, stream_bounds

log = structlog.get_logger(__name__)

BROKER_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_EXCEPTIONS,
    TimeoutError,
    BrokerUnavailable,
)


class RabbitBroker(Broker):
    def __init__(
        self,
        url: str,
        *,
        max_age_days: int = 365,
        max_bytes: int = 10 * 1024**3,
        publish_timeout: float = 10,
        connect_timeout: float = 5,
        reconnect_delay: float = 0.5,
        linger_seconds: float = 0.01,
    ) -> None:
        self.url = url
        self._max_age_days = max_age_days
        self._max_bytes = max_bytes
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._reconnect_delay = reconnect_delay
        self._linger = linger_seconds
        self._connection: AbstractConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._known_streams: set[str] = set()
        self._retry_queues: dict[tuple[str, str], set[str]] = {}

    # --- connection -----------------------------------------------------------------

    async def connect(self) -> None:
        self._closed = False
        await self._connected()

    async def _connected(self) -> AbstractConnection:
        """The live connection, opened again if it was lost."""
        async with self._lock:
            if self._closed:
                raise BrokerUnavailable("the broker connection was closed")
            if self._connection is not None and _alive(self._connection):
                return self._connection
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    await self._connection.close()
            self._publisher = None
            self._known_streams.clear()  # a restarted server may have lost nothing, but check
            try:
                self._connection = await aio_pika.connect(
                    self.url,
                    timeout=self._connect_timeout,
                    client_properties={"connection_name": "ates"},
                )
            except BROKER_ERRORS as error:
                raise BrokerUnavailable(f"cannot reach RabbitMQ: {error!r}") from error
            log.info("broker.connected", broker="rabbitmq")
            return self._connection

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            connection, self._connection, self._publisher = self._connection, None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _publishing_channel(self) -> AbstractChannel:
        connection = await self._connected()
        if self._publisher is None or self._publisher.is_closed:
            self._publisher = await connection.channel(publisher_confirms=True)
        return self._publisher

    # --- topology -------------------------------------------------------------------

    async def ensure_streams(self, domains: Iterable[str]) -> None:
        try:
            connection = await self._connected()
            async with connection.channel() as channel:
                for domain in domains:
                    await self._declare_domain(connection, channel, domain)
        except BROKER_ERRORS as error:
            raise BrokerUnavailable(f"cannot declare the streams: {error!r}") from error

    async def _declare_domain(
        self, connection: AbstractConnection, channel: AbstractChannel, domain: str
    ) -> None:
        exchange = await channel.declare_exchange(
            topology.exchange_name(domain), ExchangeType.TOPIC, durable=True
        )
        try:
            async with connection.channel() as own:  # a mismatch closes the channel
                stream = await own.declare_queue(
                    topology.log_name(domain),
                    durable=True,
                    arguments=topology.log_arguments(self._max_age_days, self._max_bytes),
                )
                await stream.bind(exchange, routing_key="#")
        except ChannelPreconditionFailed:
            # Declared earlier with other retention: queue arguments cannot change; a
            # policy can (docs/operations.md). Keep the stream as it is.
            log.warning("rabbitmq.stream_retention_differs", domain=domain)
            stream = await channel.declare_queue(topology.log_name(domain), passive=True)
            await stream.bind(exchange, routing_key="#")
        self._known_streams.add(domain)

    # --- publishing -----------------------------------------------------------------

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        missing = {m.domain for m in messages} - self._known_streams
        if missing:
            await self.ensure_streams(missing)
        try:
            channel = await self._publishing_channel()
            exchanges = {
                domain: await channel.get_exchange(topology.exchange_name(domain), ensure=False)
                for domain in {m.domain for m in messages}
            }
            confirms = [
                exchanges[m.domain].publish(
                    Message(
                        m.body,
                        message_id=m.event_id,
                        type=m.event_name,
                        content_type="application/json",
                        delivery_mode=DeliveryMode.PERSISTENT,
                    ),
                    routing_key=m.subject,
                    mandatory=True,  # unroutable = no stream: an error, not a silent drop
                )
                for m in messages
            ]
            await asyncio.wait_for(asyncio.gather(*confirms), timeout=self._publish_timeout)
        except BROKER_ERRORS as error:
            raise BrokerUnavailable(f"publish not confirmed: {error!r}") from error

    # --- consuming ------------------------------------------------------------------

    async def consume(
        self,
        group: str,
        domain: str,
        event_names: Sequence[str] | None,
        handler: BatchHandler,
        *,
        batch_size: int = 64,
    ) -> None:
        subjects = (
            [topology.every_subject(domain)]
            if event_names is None
            else sorted(subject_for(domain, name) for name in event_names)
        )

        async def session() -> None:
            await self._consume_once(group, domain, subjects, handler, batch_size)

        await consume_in_sessions(
            session, lost=BROKER_ERRORS, delay=self._reconnect_delay, group=group, domain=domain
        )

    async def _consume_once(
        self,
        group: str,
        domain: str,
        subjects: Sequence[str],
        handler: BatchHandler,
        batch_size: int,
    ) -> None:
        """Consume until the channel or connection goes away."""
        connection = await self._connected()
        if domain not in self._known_streams:
            await self.ensure_streams([domain])
        await prepare_group(connection, group, domain, subjects)
        channel = await connection.channel(publisher_confirms=True)
        closing: list[asyncio.Future[Any]] = []

        def on_cancel(_frame: Any) -> None:
            # The server cancelled the consumer: its queue was deleted (an operator, a
            # rebuild forgetting an old group). The channel stays open and we would wait
            # forever; close it, and the loop sets the group up again.
            log.warning("rabbitmq.consumer_cancelled", group=group, domain=domain)
            closing.append(asyncio.ensure_future(channel.close()))

        try:
            raw = await channel.get_underlay_channel()
            raw.on_consumer_cancel_callbacks.add(on_cancel)
            # The prefetch window is the batch: RabbitMQ keeps that many unacknowledged
            # messages in flight to us, and a batch takes whatever of them has arrived.
            await channel.set_qos(prefetch_count=batch_size)
            queue = await channel.get_queue(topology.group_queue(group, domain), ensure=False)
            arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            await queue.consume(arrived.put)
            closed = asyncio.ensure_future(channel.closed())
            try:
                while True:
                    batch = await _next_batch(arrived, closed, batch_size)
                    await self._deliver(channel, group, domain, batch, handler)
                    if len(batch) < batch_size:
                        # Not a backlog: let a few milliseconds of arrivals gather, so that
                        # a busy consumer applies tens of events per transaction, not one.
                        await asyncio.sleep(self._linger)
            finally:
                closed.cancel()
        finally:
            # Closing returns every unacknowledged message to the queue.
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()
            await asyncio.gather(*closing, return_exceptions=True)

    async def _deliver(
        self,
        channel: AbstractChannel,
        group: str,
        domain: str,
        messages: Sequence[AbstractIncomingMessage],
        handler: BatchHandler,
    ) -> None:
        attempts = [attempt_of(message) for message in messages]
        deliveries = [
            Delivery(
                body=message.body,
                subject=subject_for(domain, message.type)
                if message.type
                else message.routing_key or "",
                attempt=attempt,
            )
            for message, attempt in zip(messages, attempts, strict=True)
        ]
        outcomes: Sequence[Outcome]
        try:
            outcomes = await handler(deliveries)
        except Exception:
            # Handlers answer with outcomes; one that raises is a bug or a lost database:
            # the whole batch is tried again later (the inbox skips what was applied).
            log.exception("broker.handler_raised", group=group, domain=domain)
            outcomes = [Retry(self._reconnect_delay * 2)] * len(messages)
        retries = [
            self._schedule_retry(channel, group, domain, message, attempt, outcome.delay)
            for message, attempt, outcome in zip(messages, attempts, outcomes, strict=True)
            if isinstance(outcome, Retry)
        ]
        # A retry's copy is confirmed before its original is acknowledged.
        await asyncio.gather(*retries)
        # One ack for the whole batch: every delivery tag up to the last one.
        await messages[-1].ack(multiple=True)

    async def _schedule_retry(
        self,
        channel: AbstractChannel,
        group: str,
        domain: str,
        message: AbstractIncomingMessage,
        attempt: int,
        delay: float,
    ) -> None:
        delay_ms = topology.retry_delay_ms(delay)
        name = topology.retry_queue(group, domain, delay_ms)
        # Declared at every use: it also keeps the queue from expiring while in use.
        await channel.declare_queue(
            name, durable=True, arguments=topology.retry_arguments(group, domain, delay_ms)
        )
        self._retry_queues.setdefault((group, domain), set()).add(name)
        await channel.default_exchange.publish(
            copy_of(message, **{topology.ATTEMPT_HEADER: attempt + 1}),
            routing_key=name,
            mandatory=True,
        )

    async def delete_group(self, group: str, domain: str) -> None:
        connection = await self._connected()
        async with connection.channel() as channel:
            names = {
                topology.group_queue(group, domain),
                topology.filling_flag(group, domain),
                *self._retry_queues.pop((group, domain), set()),
            }
            for name in sorted(names):
                await channel.queue_delete(name, if_unused=False, if_empty=False)
        # The parked queue keeps what RabbitMQ dead-lettered; it goes only when empty.
        with contextlib.suppress(*BROKER_ERRORS):
            async with connection.channel() as channel:
                await channel.queue_delete(
                    topology.parked_queue(group, domain), if_unused=False, if_empty=True
                )

    async def log_size(self, domain: str) -> int:
        """Offsets the stream retains (the adapter's markers included: an estimate)."""
        connection = await self._connected()
        try:
            bounds = await stream_bounds(connection, domain)
        except BROKER_ERRORS:
            return 0
        return 0 if bounds is None else bounds[1] - bounds[0] + 1

    async def lag(self, group: str, domain: str) -> int | None:
        """The messages ready in the group's queue (RabbitMQ's count leaves out those
        delivered and not yet acknowledged, and the copies waiting in retry queues)."""
        try:
            connection = await self._connected()
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(
                    topology.group_queue(group, domain), passive=True
                )
            except ChannelNotFoundEntity:
                return None
            finally:
                if not channel.is_closed:
                    with contextlib.suppress(Exception):
                        await channel.close()
        except BROKER_ERRORS as error:
            raise BrokerUnavailable(f"cannot read queue of {group}: {error!r}") from error
        count = queue.declaration_result.message_count
        return int(count or 0)


async def _next_batch(
    arrived: asyncio.Queue[AbstractIncomingMessage],
    closed: asyncio.Future[Any],
    size: int,
) -> list[AbstractIncomingMessage]:
    """Wait for the first message, then take whatever else has arrived, up to ``size``.
    Raises BrokerUnavailable when the channel closes."""
    if arrived.empty():
        first = asyncio.ensure_future(arrived.get())
        await asyncio.wait({first, closed}, return_when=asyncio.FIRST_COMPLETED)
        if not first.done():
            first.cancel()
            raise BrokerUnavailable("the consuming channel closed")
        batch = [first.result()]
    else:
        batch = [arrived.get_nowait()]
    while len(batch) < size and not arrived.empty():
        batch.append(arrived.get_nowait())
    return batch


def _alive(connection: AbstractConnection) -> bool:
    # is_closed only turns true on our own close(); a connection the server dropped shows
    # up as no longer "connected".
    return not connection.is_closed and connection.connected.is_set()


def attempt_of(message: AbstractIncomingMessage) -> int:
    headers: dict[str, Any] = dict(message.headers or {})
    scheduled = _as_int(headers.get(topology.ATTEMPT_HEADER), 1)
    returned = _as_int(headers.get(topology.DELIVERY_COUNT_HEADER), 0)
    return scheduled + returned


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default
