"""One process's membership of a consumer group on one domain: fetch, hand a batch to the
handler, act on its outcomes, commit.

A batch is what is waiting now, up to ``batch_size``: retry copies that are due first
(they are older), then records of the domain topic. Records of events the group does not
consume are not handed out, but committed past like the others.

Offsets are committed only after the handler returned and every ``Retry`` copy was
confirmed by the broker. If the handler raises, nothing is committed: the domain
partitions are rewound to where the batch began and its retry copies are held again, so
all of it comes again (after ``failure_backoff``), each record's attempt one higher.

Rebalance: when the group takes partitions away, Kafka asks this member to let go
(:meth:`on_partitions_revoked`) before it gives them to another. A batch in flight is
allowed to finish and commit first (at most ``revoke_timeout`` seconds), so the new owner
starts after it: no redelivery in the common case. Records fetched once the rebalance
has begun are not handed out at all. A batch that takes longer loses the race: its commit
is refused (``CommitFailedError``), the session starts over, and the new owner's
redelivery of those records is skipped by the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from ates.platform.broker.base import BatchHandler, Delivery, Retry, subject_for
from ates.platform.broker.kafka.attempts import DeliveryCounts
from ates.platform.broker.kafka.retries import Held, RetryBuffer
from ates.platform.broker.kafka.topology import (
    ATTEMPT,
    EVENT_NAME,
    NOT_BEFORE,
    Names,
    header,
    int_header,
)

log = structlog.get_logger(__name__)

# (topic, key, value, headers) to publish; returns when the broker confirmed all of them.
Produce = Callable[
    [Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]], Awaitable[None]
]


@dataclass(frozen=True, slots=True)
class SessionOptions:
    batch_size: int = 64
    poll_seconds: float = 1.0
    failure_backoff: float = 0.5
    revoke_timeout: float = 10.0
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000


@dataclass(slots=True)
class Item:
    """One delivery of a batch and where it came from."""

    tp: TopicPartition
    record: Any
    attempt: int
    held: Held | None = None  # set for a retry copy

    def delivery(self, domain: str) -> Delivery:
        name = (header(self.record.headers, EVENT_NAME) or b"").decode()
        return Delivery(
            body=self.record.value, subject=subject_for(domain, name), attempt=self.attempt
        )


class GroupSession(ConsumerRebalanceListener):
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        names: Names,
        admin: AIOKafkaAdminClient,
        produce: Produce,
        group: str,
        domain: str,
        event_names: Sequence[str] | None,
        handler: BatchHandler,
        options: SessionOptions,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.admin = admin
        self.produce = produce
        self.group = group
        self.domain = domain
        # None: every message of the topic, whatever its name
        self.names = None if event_names is None else {name.encode() for name in event_names}
        self.handler = handler
        self.options = options
        self.group_id = names.group_id(group, domain)
        self.topic = names.domain_topic(domain)
        self.retry_topic = names.retry_topic(group, domain)
        self.counts = DeliveryCounts()
        self.retries = RetryBuffer()
        self.idle = asyncio.Event()  # no batch between fetch and commit
        self.idle.set()
        self.revoking = False  # a rebalance took our partitions; not yet given new ones
        self.consumer: Any = None

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"ates-{self.group_id}",
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new group starts at the beginning of the log
            session_timeout_ms=self.options.session_timeout_ms,
            heartbeat_interval_ms=self.options.heartbeat_interval_ms,
        )
        self.consumer.subscribe([self.topic, self.retry_topic], listener=self)
        try:
            await self.consumer.start()
            while True:
                await self._step()
        finally:
            # Leaving the group hands our partitions to the others at once; against a
            # broker that is down it cannot, and must not hold up a shutdown.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.consumer.stop(), 5)

    async def _step(self) -> None:
        due = self.retries.take_due(self.options.batch_size)
        room = self.options.batch_size - len(due)
        fetched: dict[TopicPartition, list[Any]] = {}
        if room > 0:
            wait = 0.0 if due else self.options.poll_seconds
            next_retry = self.retries.seconds_to_next()
            if next_retry is not None:
                wait = min(wait, next_retry)
            fetched = await self.consumer.getmany(timeout_ms=int(wait * 1000), max_records=room)
        if self.revoking:
            # Fetched before the rebalance began: the partitions' next owner (maybe us
            # again) starts from the committed offsets, and so must we.
            return
        self._hold_retries(fetched)
        batch = [self._retry_item(held) for held in due]
        starts: dict[TopicPartition, int] = {}  # domain partitions: where the batch began
        ends: dict[TopicPartition, int] = {}  # and the offset after it
        for tp, records in fetched.items():
            if tp.topic != self.topic or not records:
                continue
            starts[tp] = records[0].offset
            ends[tp] = records[-1].offset + 1
            batch += [
                Item(tp, record, self.counts.attempt(tp, record.offset))
                for record in records
                if self.names is None or header(record.headers, EVENT_NAME) in self.names
            ]
        if not batch:
            if ends:  # only events this group does not consume
                await self._commit(ends, settled=[])
            return
        self.idle.clear()
        try:
            await self._handle(batch, starts, ends)
        finally:
            self.idle.set()

    async def _handle(
        self, batch: list[Item], starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]
    ) -> None:
        note = asyncio.create_task(self._note_handing(batch, starts))
        try:
            outcomes = await self.handler([item.delivery(self.domain) for item in batch])
        except asyncio.CancelledError:
            # Stopping in the middle of a batch counts as an attempt, as a crash would.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(note), 1)
            note.cancel()
            raise
        except Exception as error:
            log.warning(
                "broker.batch_failed",
                group=self.group,
                domain=self.domain,
                size=len(batch),
                error=repr(error),
            )
            with contextlib.suppress(Exception):
                await note
            self._rewind(batch, starts)
            await asyncio.sleep(self.options.failure_backoff)
            return
        await note  # before the commit below: the commit must be the later one
        if len(outcomes) != len(batch):
            raise RuntimeError(f"handler answered {len(outcomes)} outcomes for {len(batch)}")
        await self._publish_retries(
            [
                (item, outcome)
                for item, outcome in zip(batch, outcomes, strict=True)
                if isinstance(outcome, Retry)
            ]
        )
        await self._commit(ends, settled=batch)

    # --- offsets ------------------------------------------------------------------------

    async def _note_handing(self, batch: list[Item], starts: dict[TopicPartition, int]) -> None:
        """Commit the current positions again with a note of what is being handed out
        (see :mod:`.attempts`), so that a crash during the batch still counts."""
        by_tp: dict[TopicPartition, list[int]] = {}
        for item in batch:
            by_tp.setdefault(item.tp, []).append(item.record.offset)
        positions = {
            **self.retries.commit_offsets(tp for tp in by_tp if tp.topic == self.retry_topic),
            **starts,
        }
        offsets = {
            tp: OffsetAndMetadata(positions[tp], self.counts.if_failed(tp, found).encode())
            for tp, found in by_tp.items()
            if tp in positions
        }
        if offsets:
            await self.consumer.commit(offsets)

    async def _commit(self, ends: dict[TopicPartition, int], settled: list[Item]) -> None:
        held = [item.held for item in settled if item.held is not None]
        self.retries.settle(held)
        offsets = {**ends, **self.retries.commit_offsets({h.tp for h in held})}
        if offsets:
            await self.consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        for tp in offsets:
            self.counts.settled(tp)

    def _rewind(self, batch: list[Item], starts: dict[TopicPartition, int]) -> None:
        by_tp: dict[TopicPartition, list[int]] = {}
        for item in batch:
            by_tp.setdefault(item.tp, []).append(item.record.offset)
        for tp, offsets in by_tp.items():
            self.counts.failed(tp, offsets)
        assigned = self.consumer.assignment()
        for tp, offset in starts.items():
            if tp in assigned:
                self.consumer.seek(tp, offset)
        self.retries.put_back(item.held for item in batch if item.held is not None)

    # --- retries ------------------------------------------------------------------------

    def _hold_retries(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in fetched.items():
            if tp.topic == self.retry_topic:
                for record in records:
                    self.retries.hold(tp, record)
        # Bound the memory: stop fetching copies while too many wait.
        retry_tps = [tp for tp in self.consumer.assignment() if tp.topic == self.retry_topic]
        if len(self.retries) >= self.retries.limit:
            self.consumer.pause(*retry_tps)
        elif self.consumer.paused():
            self.consumer.resume(*retry_tps)

    def _retry_item(self, held: Held) -> Item:
        base = int_header(held.record.headers, ATTEMPT, 2)
        return Item(held.tp, held.record, self.counts.attempt(held.tp, held.offset, base), held)

    async def _publish_retries(self, retried: list[tuple[Item, Retry]]) -> None:
        if not retried:
            return
        now_ms = int(time.time() * 1000)
        copies = []
        for item, outcome in retried:
            headers = [
                (key, value)
                for key, value in item.record.headers or ()
                if key not in (ATTEMPT, NOT_BEFORE)
            ]
            headers += [
                (ATTEMPT, str(item.attempt + 1).encode()),
                (NOT_BEFORE, str(now_ms + int(outcome.delay * 1000)).encode()),
            ]
            copies.append((self.retry_topic, item.record.key, item.record.value, headers))
        await self.produce(copies)

    # --- rebalance (called by aiokafka's coordinator) ----------------------------------

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = set(revoked)
        self.revoking = True
        try:
            await asyncio.wait_for(self.idle.wait(), self.options.revoke_timeout)
        except TimeoutError:
            log.warning("broker.rebalance_during_batch", group=self.group, domain=self.domain)
        self.retries.drop(revoked)
        self.counts.forget(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.revoking = False
        assigned = list(assigned)
        if not assigned:
            return
        try:
            committed = await self.admin.list_consumer_group_offsets(
                self.group_id, partitions=assigned
            )
        except Exception as error:  # attempts then start from the records' own
            log.warning("broker.committed_unknown", group=self.group, error=repr(error))
            return
        for tp, meta in committed.items():
            self.counts.load(tp, meta.metadata)
