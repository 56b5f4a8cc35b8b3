"""Reading a domain's stream queue (its retained log) over AMQP, and writing markers.

RabbitMQ streams over AMQP 0.9.1 need a prefetch and an ``x-stream-offset``; the server
keeps no position for such a consumer, so every read here is a fresh scan from an offset
the caller chooses (see PITFALLS.md). Acks on a stream only return credit.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from aio_pika import DeliveryMode, Message
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    ConsumerTag,
)

from ates.platform.broker.base import BrokerUnavailable
from ates.platform.broker.rabbitmq.topology import MARKER_HEADER, TRANSIENT_HEADERS, log_name

StreamOffset = str | int  # "first", "last", "next" or a numeric offset


class StreamReader:
    """Messages of one stream from ``offset`` on, one at a time, on a channel of its own."""

    def __init__(
        self,
        connection: AbstractConnection,
        domain: str,
        offset: StreamOffset = "first",
        *,
        prefetch: int = 500,
        idle_timeout: float = 30.0,
    ) -> None:
        self._connection = connection
        self._stream = log_name(domain)
        self._offset = offset
        self._prefetch = prefetch
        self._idle_timeout = idle_timeout
        self._buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._channel: AbstractChannel | None = None
        self._tag: ConsumerTag | None = None

    async def __aenter__(self) -> StreamReader:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        queue = await self._channel.get_queue(self._stream, ensure=False)
        self._tag = await queue.consume(
            self._buffer.put, arguments={"x-stream-offset": self._offset}
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
        self._channel = None

    async def next(self, timeout: float | None = None) -> AbstractIncomingMessage | None:
        """The next message, acknowledged already; None if none came within the timeout."""
        try:
            message = await asyncio.wait_for(self._buffer.get(), timeout or self._idle_timeout)
        except TimeoutError:
            if self._channel is None or self._channel.is_closed:
                raise BrokerUnavailable(f"channel reading {self._stream} closed") from None
            return None
        await message.ack()  # credit for the next one; a stream has no redelivery
        return message


def offset_of(message: AbstractIncomingMessage) -> int:
    return int((message.headers or {}).get("x-stream-offset", -1))  # type: ignore[arg-type]


def marker_of(message: AbstractIncomingMessage) -> str | None:
    value = (message.headers or {}).get(MARKER_HEADER)
    return None if value is None else str(value)


async def append_marker(channel: AbstractChannel, domain: str) -> str:
    """Append a marker to the domain's stream (confirmed) and return its id.

    Markers let a reader of the stream know where "now" was at a given moment; every
    reader skips them."""
    marker = uuid.uuid4().hex
    await channel.default_exchange.publish(
        Message(b"", headers={MARKER_HEADER: marker}, delivery_mode=DeliveryMode.PERSISTENT),
        routing_key=log_name(domain),
        mandatory=True,
    )
    return marker


def copy_of(message: AbstractIncomingMessage, **headers: Any) -> Message:
    """A persistent copy of a delivered message, without the old copy's journey headers."""
    kept = {k: v for k, v in (message.headers or {}).items() if k not in TRANSIENT_HEADERS}
    kept.update(headers)
    return Message(
        message.body,
        headers=kept,
        message_id=message.message_id,
        type=message.type,
        content_type=message.content_type,
        timestamp=message.timestamp,
        delivery_mode=DeliveryMode.PERSISTENT,
    )


class ConfirmedCopier:
    """Publishes copies into one queue, many in flight, and waits for their confirms."""

    def __init__(self, channel: AbstractChannel, queue: str, *, window: int = 256) -> None:
        self._channel = channel
        self._queue = queue
        self._window = window
        self._pending: list[asyncio.Task[Any]] = []
        self.copied = 0

    async def copy(self, message: AbstractIncomingMessage) -> None:
        publish = self._channel.default_exchange.publish(
            copy_of(message), routing_key=self._queue, mandatory=True
        )
        self._pending.append(asyncio.ensure_future(publish))
        self.copied += 1
        if len(self._pending) >= self._window:
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        try:
            await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()


async def copy_until_marker(
    reader: StreamReader, copier: ConfirmedCopier, marker: str, subjects: Iterable[str]
) -> None:
    """Copy the messages of ``subjects`` the reader yields until ``marker``, confirmed
    (every message when a subject is the domain's ``D.#``)."""
    wanted = frozenset(subjects)
    everything = any(subject.endswith(".#") for subject in wanted)
    while True:
        message = await reader.next()
        if message is None:
            raise BrokerUnavailable("the stream went quiet before the marker arrived")
        seen = marker_of(message)
        if seen is not None:
            if seen == marker:
                await copier.flush()
                return
            continue  # someone else's marker
        if everything or message.routing_key in wanted:
            await copier.copy(message)


async def stream_bounds(
    connection: AbstractConnection, domain: str, *, wait: float = 1.0
) -> tuple[int, int] | None:
    """(first, last) offsets the stream retains, or None if it holds nothing."""
    async with StreamReader(connection, domain, "first", prefetch=1) as reader:
        first = await reader.next(timeout=wait)
    if first is None:
        return None
    last = offset_of(first)
    # "last" starts at the last chunk: read it to its end.
    async with StreamReader(connection, domain, "last", prefetch=500) as reader:
        message = await reader.next(timeout=wait)
        while message is not None:
            last = max(last, offset_of(message))
            message = await reader.next(timeout=0.2)
    return offset_of(first), last
