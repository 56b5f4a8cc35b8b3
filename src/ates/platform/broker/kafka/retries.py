"""Retry copies waiting for their time, held in memory by the consumer that fetched them.

``Retry(delay)`` publishes a copy of the message to the group's retry topic with a
not-before time (see :mod:`.topology`) and acknowledges the original, so the domain's
partitions never wait for a retry. The consumer reads the retry topic as it reads the
domain topic and keeps each copy here until it is due. Copies are held rather than the
partition paused at the first copy not yet due: a short delay is not stuck behind a long
one that happens to sit before it in the same partition.

A retry partition's committed offset is its oldest copy not yet settled, so after a crash
or a rebalance everything still waiting is fetched again (and copies settled after it come
once more: the inbox skips them).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.structs import TopicPartition

from ates.platform.broker.kafka.topology import NOT_BEFORE, int_header


@dataclass(order=True)
class Held:
    due: float  # time.time() seconds
    order: int
    tp: TopicPartition = field(compare=False)
    record: Any = field(compare=False)  # aiokafka ConsumerRecord

    @property
    def offset(self) -> int:
        return int(self.record.offset)


class RetryBuffer:
    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit  # beyond it the consumer pauses the retry partitions
        self._heap: list[Held] = []
        self._pending: dict[TopicPartition, set[int]] = {}  # held or being handled
        self._next: dict[TopicPartition, int] = {}  # after the last fetched copy
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def hold(self, tp: TopicPartition, record: Any) -> None:
        due = int_header(record.headers, NOT_BEFORE, 0) / 1000
        heapq.heappush(self._heap, Held(due, next(self._order), tp, record))
        self._pending.setdefault(tp, set()).add(int(record.offset))
        self._next[tp] = max(self._next.get(tp, 0), int(record.offset) + 1)

    def take_due(self, limit: int, now: float | None = None) -> list[Held]:
        now = time.time() if now is None else now
        taken: list[Held] = []
        while self._heap and len(taken) < limit and self._heap[0].due <= now:
            taken.append(heapq.heappop(self._heap))
        return taken

    def put_back(self, items: Iterable[Held]) -> None:
        """Copies of a batch whose handler raised: due again at once."""
        for item in items:
            heapq.heappush(self._heap, item)

    def settle(self, items: Iterable[Held]) -> None:
        for item in items:
            self._pending.get(item.tp, set()).discard(item.offset)

    def seconds_to_next(self, now: float | None = None) -> float | None:
        if not self._heap:
            return None
        now = time.time() if now is None else now
        return max(self._heap[0].due - now, 0.0)

    def commit_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Where each retry partition may be committed: its oldest unsettled copy."""
        offsets = {}
        for tp in tps:
            if tp not in self._next:
                continue
            pending = self._pending.get(tp)
            offsets[tp] = min(pending) if pending else self._next[tp]
        return offsets

    def drop(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions revoked: their new owner fetches the copies again."""
        gone = set(tps)
        self._heap = [held for held in self._heap if held.tp not in gone]
        heapq.heapify(self._heap)
        for tp in gone:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)
