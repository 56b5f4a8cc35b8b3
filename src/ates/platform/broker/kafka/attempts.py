"""How many times records were handed to a handler without being settled.

Kafka keeps an offset per partition and nothing per message, so a redelivery would look
like a first delivery and a message that kills its process each time would never reach
the dead-letter limit. Before a batch goes to the handler, the adapter commits the offset
it already stands at once more, with a note in the commit's metadata: "records
``first``..``last`` of this partition have now been handed out ``count`` times". A batch
that settles commits past them with an empty note. The next owner of the partition (this
process after a failed batch, another one after a crash or a rebalance) reads the note and
adds ``count`` to each record's attempt.

The note covers a range and keeps the highest count in it: after a crash, a record that
was in the range but handed out fewer times is counted as often as the most-handed one.
That errs on the side of dead-lettering a little early, never of looping forever.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.structs import TopicPartition


@dataclass(frozen=True, slots=True)
class Mark:
    first: int
    last: int
    count: int

    def covers(self, offset: int) -> bool:
        return self.first <= offset <= self.last

    def encode(self) -> str:
        return f"{self.first}-{self.last}:{self.count}"

    @staticmethod
    def decode(note: str | None) -> Mark | None:
        try:
            span, count = (note or "").split(":")
            first, last = span.split("-")
            return Mark(int(first), int(last), int(count))
        except ValueError:
            return None  # empty (settled) or written by someone else


class DeliveryCounts:
    def __init__(self) -> None:
        self._marks: dict[TopicPartition, Mark] = {}

    def load(self, tp: TopicPartition, note: str | None) -> None:
        mark = Mark.decode(note)
        if mark is not None:
            self._marks[tp] = mark

    def attempt(self, tp: TopicPartition, offset: int, base: int = 1) -> int:
        """``base`` is the attempt the record itself says it is (a retry copy's header)."""
        mark = self._marks.get(tp)
        return base + (mark.count if mark is not None and mark.covers(offset) else 0)

    def if_failed(self, tp: TopicPartition, offsets: Iterable[int]) -> Mark:
        """The mark these records get should the batch they are in not settle."""
        span = sorted(offsets)
        first, last = span[0], span[-1]
        mark = self._marks.get(tp)
        if mark is None or mark.last < first or last < mark.first:
            return Mark(first, last, 1)
        return Mark(min(first, mark.first), max(last, mark.last), mark.count + 1)

    def failed(self, tp: TopicPartition, offsets: Iterable[int]) -> None:
        self._marks[tp] = self.if_failed(tp, offsets)

    def settled(self, tp: TopicPartition) -> None:
        self._marks.pop(tp, None)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._marks.pop(tp, None)
