"""Setting up a consumer group: its queues, its bindings and, for a new group, its history.

The broker port promises that a new group starts at the beginning of the retained log.
A group's queue only receives what is routed after it is bound, so the first process of
a new group fills the queue from the domain's stream:

1. take the group's setup lock (an exclusive queue: one process of the group at a time);
2. if the group queue exists and no ``filling`` flag does, only (re)bind the subjects;
3. otherwise raise the flag, declare the queue (not yet bound), append marker A to the
   stream and copy every matching message before A into the queue; bind the subjects;
   append marker B and copy what lies between A and B; lower the flag.

Copying before binding keeps the log's order: history first, then live messages. The
messages routed between the bind and marker B land in the queue twice; the consumer's
inbox drops the second copy. A process that dies while filling leaves the flag up, and
the next one fills again from the start (duplicates again harmless) rather than leaving
the group with a hole in its history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.exceptions import ChannelLockedResource, ChannelNotFoundEntity

from ates.platform.broker.rabbitmq import topology
from ates.platform.broker.rabbitmq.stream import (
    ConfirmedCopier,
    StreamReader,
    append_marker,
    copy_until_marker,
)

log = structlog.get_logger(__name__)


async def prepare_group(
    connection: AbstractConnection,
    group: str,
    domain: str,
    subjects: Sequence[str],
    *,
    lock_poll_seconds: float = 0.2,
) -> None:
    """Make ``group``'s queue of ``domain`` ready to consume (idempotent, crash-safe)."""
    name = topology.group_queue(group, domain)
    flag = topology.filling_flag(group, domain)
    async with _setup_lock(connection, group, domain, lock_poll_seconds):
        channel = await connection.channel(publisher_confirms=True)
        try:
            await channel.declare_queue(
                topology.parked_queue(group, domain),
                durable=True,
                arguments=topology.parked_arguments(),
            )
            if await queue_exists(connection, name) and not await queue_exists(connection, flag):
                await _bind(channel, group, domain, subjects)
                return
            await channel.declare_queue(flag, durable=True)
            await channel.declare_queue(
                name, durable=True, arguments=topology.group_arguments(group, domain)
            )
            copied = await _fill(connection, channel, group, domain, subjects)
            await channel.queue_delete(flag)
            log.info("rabbitmq.group_filled", group=group, domain=domain, copied=copied)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()


async def _fill(
    connection: AbstractConnection,
    channel: AbstractChannel,
    group: str,
    domain: str,
    subjects: Sequence[str],
) -> int:
    copier = ConfirmedCopier(channel, topology.group_queue(group, domain))
    before = await append_marker(channel, domain)
    async with StreamReader(connection, domain, "first") as reader:
        await copy_until_marker(reader, copier, before, subjects)
        await _bind(channel, group, domain, subjects)
        after = await append_marker(channel, domain)
        await copy_until_marker(reader, copier, after, subjects)
    return copier.copied


async def _bind(channel: AbstractChannel, group: str, domain: str, subjects: Sequence[str]) -> None:
    # Subjects a group no longer handles stay bound (AMQP cannot list bindings); their
    # events are recorded in the inbox and skipped, which costs little.
    queue = await channel.get_queue(topology.group_queue(group, domain), ensure=False)
    for subject in subjects:
        await queue.bind(topology.exchange_name(domain), routing_key=subject)


async def queue_exists(connection: AbstractConnection, name: str) -> bool:
    # A passive declare of a missing queue closes its channel, hence a channel of its own.
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, passive=True)
        return True
    except ChannelNotFoundEntity:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()


@contextlib.asynccontextmanager
async def _setup_lock(
    connection: AbstractConnection, group: str, domain: str, poll_seconds: float
) -> AsyncIterator[None]:
    """Hold the group's setup lock: an exclusive queue, freed with its connection if the
    holder dies."""
    name = topology.setup_lock(group, domain)
    while True:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, exclusive=True, auto_delete=True)
            break
        except ChannelLockedResource:
            await asyncio.sleep(poll_seconds)  # another process is setting the group up
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await channel.queue_delete(name)
            await channel.close()
