"""The Kafka adapter on a local broker (``LocalKafka``): batches, keyed order, history,
delayed retries, uncommitted failures, rebalances during a batch, a broker restart.

Tests share one broker (``kafka_server``) and look only at their own messages: their own
event ids, groups and, where counts matter, a domain (topic) of their own. The ones that
restart the broker get one of their own (``own_kafka_server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest

from ates.platform.broker import (
    Ack,
    Broker,
    BrokerUnavailable,
    Delivery,
    Outcome,
    OutgoingMessage,
    Retry,
    create_broker,
)
from ates.platform.broker.kafka.server import LocalKafka
from tests.integration.broker_contract import BrokerContract, BrokerFixtures
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

OPTIONS: dict[str, Any] = {
    "publish_timeout": 3,
    "reconnect_delay": 0.2,
    "failure_backoff": 0.05,
    "poll_seconds": 0.2,
}

RestartBroker = Callable[[Callable[[], Awaitable[None]] | None], Awaitable[None]]


class KafkaFixtures(BrokerFixtures):
    """``broker_url`` and ``restart_broker`` as the shared contract suite wants them
    (``class TestKafkaContract(KafkaFixtures, BrokerContract)``), and brokers on them."""

    @pytest.fixture
    def broker_url(self, kafka_server: LocalKafka) -> str:
        return kafka_server.url

    @pytest.fixture
    def broker_options(self) -> dict[str, Any]:
        # A namespace of the test's own on the shared broker (as a virtual host per test on
        # RabbitMQ): its topics start empty, so a new group reads only this test's history.
        return {**OPTIONS, "namespace": unique("t")}

    @pytest.fixture
    def restart_broker(self, kafka_server: LocalKafka) -> RestartBroker:
        async def restart(while_down: Callable[[], Awaitable[None]] | None = None) -> None:
            await asyncio.to_thread(kafka_server.stop)
            try:
                if while_down is not None:
                    await while_down()
            finally:
                await asyncio.to_thread(kafka_server.start)  # same ports, same data

        return restart


# --- helpers -----------------------------------------------------------------------------


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def message(
    domain: str = "accounts", name: str = "Thing", key: str | None = None
) -> OutgoingMessage:
    """The adapter moves bytes: the body is just the event id, which the tests read back."""
    event_id = str(uuid.uuid4())
    return OutgoingMessage(event_id, domain, name, event_id.encode(), key=key)


class Inbox:
    """A batch handler that applies a batch as one transaction would: all of it when the
    handler returns, nothing if it is cancelled or raises first. Like the platform's
    inbox it applies each event id once and reports the rest as duplicates."""

    def __init__(
        self,
        policy: Callable[[Delivery], Outcome] | None = None,
        *,
        work_seconds: float = 0.0,
        fail: Callable[[Sequence[Delivery]], bool] | None = None,
    ) -> None:
        self.policy = policy or (lambda _d: Ack())
        self.work_seconds = work_seconds
        self.fail = fail or (lambda _b: False)
        self.seen: list[tuple[str, int, float]] = []  # (event id, attempt, when)
        self.applied: Counter[str] = Counter()
        self.duplicates = 0
        self.batches: list[int] = []
        self.subjects: set[str] = set()

    async def __call__(self, batch: Sequence[Delivery]) -> Sequence[Outcome]:
        now = time.monotonic()
        for delivery in batch:
            self.seen.append((delivery.body.decode(), delivery.attempt, now))
            self.subjects.add(delivery.subject)
        if self.fail(batch):
            raise RuntimeError("the database went away")
        if self.work_seconds:
            await asyncio.sleep(self.work_seconds)
        outcomes = [self.policy(delivery) for delivery in batch]
        self.batches.append(len(batch))
        for delivery, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Ack):
                event_id = delivery.body.decode()
                if self.applied[event_id]:
                    self.duplicates += 1
                else:
                    self.applied[event_id] += 1
        return outcomes

    def ids(self, only: set[str]) -> Counter[str]:
        return Counter(event_id for event_id, _, _ in self.seen if event_id in only)

    def attempts(self, event_id: str) -> list[int]:
        return [attempt for seen, attempt, _ in self.seen if seen == event_id]

    def times(self, event_id: str) -> list[float]:
        return [at for seen, _, at in self.seen if seen == event_id]


@contextlib.asynccontextmanager
async def consuming(
    broker: Broker,
    group: str,
    handler: Inbox,
    *,
    domain: str = "accounts",
    names: Sequence[str] = ("Thing",),
    batch_size: int = 64,
) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(
        broker.consume(group, domain, list(names), handler, batch_size=batch_size)
    )
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def holds(value: object) -> object:
    return value


async def publish_until_confirmed(broker: Broker, messages: list[OutgoingMessage]) -> None:
    """What the outbox relay does: keep the messages until the broker confirms them."""
    while True:
        try:
            await broker.publish(messages)
            return
        except BrokerUnavailable:
            await asyncio.sleep(0.2)


# --- the adapter ----------------------------------------------------------------------------


class TestKafkaContract(KafkaFixtures, BrokerContract):
    """The shared broker contract, unchanged, on Kafka."""


class TestKafkaBroker(KafkaFixtures):
    @pytest.fixture
    async def domain(self, broker: Broker) -> str:
        """A domain (topic) of the test's own: a new group reads only this test's history."""
        name = unique("d").replace("-", "")
        await broker.ensure_streams([name])
        return name

    async def test_a_batch_holds_what_is_waiting_and_is_committed_once_handled(
        self, broker: Broker, domain: str
    ) -> None:
        group = unique("batch")
        messages = [message(domain) for _ in range(300)]
        ids = {m.event_id for m in messages}
        await broker.publish(messages)
        first, fence = Inbox(), message(domain)
        async with consuming(broker, group, first, batch_size=50, domain=domain):
            await eventually(lambda: holds(len(first.ids(ids)) == 300))
            # A later batch arriving means the one before it was committed; stopping
            # earlier is a crash before the commit, and the batch would rightly come again.
            await broker.publish([fence])
            await eventually(lambda: holds(first.ids({fence.event_id})))
        assert set(first.ids(ids).values()) == {1}
        assert max(first.batches) == 50, "whatever is waiting goes in one batch, up to the size"
        assert first.subjects == {f"{domain}.Thing"}

        again = Inbox()
        extra = message(domain)
        async with consuming(broker, group, again, batch_size=50, domain=domain):
            await broker.publish([extra])
            await eventually(lambda: holds(again.ids({extra.event_id})))
        assert not again.ids(ids), "committed messages came back"

    async def test_one_keys_messages_keep_their_order(self, broker: Broker, domain: str) -> None:
        keys = [str(uuid.uuid4()) for _ in range(5)]
        messages = [message(domain, key=keys[i % 5]) for i in range(200)]
        ids = {m.event_id for m in messages}
        inbox = Inbox()
        async with consuming(broker, unique("order"), inbox, batch_size=16, domain=domain):
            for start in range(0, 200, 40):  # several publishes, as a relay would
                await broker.publish(messages[start : start + 40])
            await eventually(lambda: holds(len(inbox.ids(ids)) == 200))
        seen = [event_id for event_id, _, _ in inbox.seen if event_id in ids]
        for key in keys:
            published = [m.event_id for m in messages if m.key == key]
            assert [e for e in seen if e in set(published)] == published

    async def test_a_new_group_reads_the_retained_history(
        self, broker: Broker, domain: str
    ) -> None:
        history = [message(domain) for _ in range(20)]
        ids = {m.event_id for m in history}
        await broker.publish(history)
        late = Inbox()
        async with consuming(broker, unique("late"), late, domain=domain):
            await eventually(lambda: holds(len(late.ids(ids)) == 20))

    async def test_events_the_group_does_not_consume_are_skipped_and_committed(
        self, broker: Broker, domain: str
    ) -> None:
        group = unique("filter")
        wanted = [message(domain, name="Wanted") for _ in range(5)]
        other = [message(domain, name="Other") for _ in range(5)]
        inbox = Inbox()
        async with consuming(broker, group, inbox, names=["Wanted"], domain=domain):
            await broker.publish([m for pair in zip(wanted, other, strict=True) for m in pair])
            await eventually(lambda: holds(len(inbox.ids({m.event_id for m in wanted})) == 5))
        assert not inbox.ids({m.event_id for m in other})
        assert inbox.subjects == {f"{domain}.Wanted"}

    async def test_retry_comes_back_later_with_the_next_attempt_while_others_go_on(
        self, broker: Broker, domain: str
    ) -> None:
        slow = message(domain)
        delay = 1.0

        def policy(delivery: Delivery) -> Outcome:
            if delivery.body.decode() == slow.event_id and delivery.attempt < 3:
                return Retry(delay)
            return Ack()

        inbox = Inbox(policy)
        after = [message(domain) for _ in range(10)]
        async with consuming(broker, unique("retry"), inbox, domain=domain):
            await broker.publish([slow])
            await eventually(lambda: holds(inbox.ids({slow.event_id})))
            await broker.publish(after)
            await eventually(lambda: holds(len(inbox.ids({m.event_id for m in after})) == 10))
            assert inbox.attempts(slow.event_id) == [1], "the others waited for the retry"
            await eventually(lambda: holds(len(inbox.attempts(slow.event_id)) == 3), timeout=20)
        assert inbox.attempts(slow.event_id) == [1, 2, 3]
        first, second, third = inbox.times(slow.event_id)
        assert second - first >= delay * 0.9 and third - second >= delay * 0.9

    async def test_a_short_retry_is_not_held_back_by_a_longer_one(
        self, broker: Broker, domain: str
    ) -> None:
        # Same key: the copies share a retry partition, the long one first.
        key = str(uuid.uuid4())
        long, short = message(domain, key=key), message(domain, key=key)
        delays = {long.event_id: 3.0, short.event_id: 0.05}
        inbox = Inbox(lambda d: Retry(delays[d.body.decode()]) if d.attempt == 1 else Ack())
        async with consuming(broker, unique("delays"), inbox, domain=domain):
            await broker.publish([long, short])
            await eventually(lambda: holds(len(inbox.seen) >= 4), timeout=20)
        second_round = [event_id for event_id, attempt, _ in inbox.seen if attempt == 2]
        assert second_round == [short.event_id, long.event_id]

    async def test_a_batch_whose_handler_raises_comes_again_whole(
        self, broker: Broker, domain: str
    ) -> None:
        messages = [message(domain) for _ in range(10)]
        ids = {m.event_id for m in messages}
        # The database is back once every message of a batch was tried twice before.
        inbox = Inbox(fail=lambda batch: any(d.attempt < 3 for d in batch))
        await broker.publish(messages)
        async with consuming(broker, unique("raises"), inbox, domain=domain):
            await eventually(lambda: holds(len(inbox.applied.keys() & ids) == 10))
        for m in messages:
            attempts = inbox.attempts(m.event_id)
            assert len(attempts) >= 3
            assert attempts == list(range(1, len(attempts) + 1)), "one more each time"
        assert inbox.duplicates == 0

    async def test_nothing_is_committed_while_the_handler_raises(
        self, broker: Broker, domain: str, second_broker: Broker
    ) -> None:
        group = unique("uncommitted")
        messages = [message(domain) for _ in range(5)]
        ids = {m.event_id for m in messages}
        await broker.publish(messages)
        failing = Inbox(fail=lambda _batch: True)
        async with consuming(broker, group, failing, domain=domain):
            await eventually(lambda: holds(sum(failing.ids(ids).values()) >= 10))
        # The process stops; another takes over the group and gets every message again,
        # counted as a further attempt although this one never acknowledged anything.
        survivor = Inbox()
        async with consuming(second_broker, group, survivor, domain=domain):
            await eventually(lambda: holds(len(survivor.applied.keys() & ids) == 5))
        for m in messages:
            assert survivor.attempts(m.event_id)[0] > max(failing.attempts(m.event_id))

    async def test_a_crash_inside_a_batch_counts_as_an_attempt(
        self, broker: Broker, domain: str, second_broker: Broker
    ) -> None:
        group = unique("crash")
        started = asyncio.Event()

        async def hang(batch: Sequence[Delivery]) -> Sequence[Outcome]:
            started.set()
            await asyncio.sleep(3600)  # the process dies here
            return [Ack() for _ in batch]

        crashed = message(domain)
        task = asyncio.create_task(broker.consume(group, domain, ["Thing"], hang))
        await broker.publish([crashed])
        await asyncio.wait_for(started.wait(), 20)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await broker.close()

        survivor = Inbox()
        async with consuming(second_broker, group, survivor, domain=domain):
            await eventually(lambda: holds(survivor.ids({crashed.event_id})), timeout=90)
        assert survivor.attempts(crashed.event_id) == [2]

    async def test_a_rebalance_while_a_batch_is_in_flight_applies_every_event_once(
        self, broker: Broker, domain: str, second_broker: Broker
    ) -> None:
        group = unique("rebalance")
        keys = [str(uuid.uuid4()) for _ in range(24)]
        messages = [message(domain, key=keys[i % 24]) for i in range(2400)]
        ids = {m.event_id for m in messages}
        one = Inbox(work_seconds=0.05)
        two = Inbox(work_seconds=0.05)
        await broker.publish(messages)
        async with consuming(broker, group, one, batch_size=20, domain=domain):
            await eventually(lambda: holds(len(one.applied) >= 100))
            async with consuming(second_broker, group, two, batch_size=20, domain=domain):
                # the second process joins: the first lets its batch finish and hands over
                # (a rebalance: heartbeats, a revoke that waits for the batch, a rejoin —
                # seconds on an idle machine, more on a loaded one)
                await eventually(lambda: holds(len(two.applied) >= 100), timeout=90)
            # ... and leaves (stopped in the middle of a batch): the first takes it all back
            done = len(one.applied)
            await eventually(lambda: holds(len(one.applied) > done + 100), timeout=90)
            await eventually(
                lambda: holds(len((one.applied + two.applied).keys() & ids) == 2400), timeout=180
            )
        applied = one.applied + two.applied
        assert set(applied) >= ids
        assert set(applied[i] for i in ids) == {1}, "an event was applied by both processes"
        for key in keys:  # each process saw each key's events in order
            published = [m.event_id for m in messages if m.key == key]
            for inbox in (one, two):
                order = [e for e, _, _ in inbox.seen if e in set(published)]
                first_seen = list(dict.fromkeys(order))
                assert first_seen == sorted(first_seen, key=published.index)

    async def test_log_size_counts_the_messages_a_domain_retains(
        self, broker: Broker, domain: str
    ) -> None:
        assert await broker.log_size(unique("none").replace("-", "")) == 0  # no topic
        assert await broker.log_size(domain) == 0
        await broker.publish([message(domain) for _ in range(25)])
        assert await broker.log_size(domain) == 25

    async def test_a_deleted_group_reads_the_log_again_from_the_beginning(
        self, broker: Broker, domain: str
    ) -> None:
        # What a rebuild does: forget the group, consume again.
        group = unique("rebuilt")
        messages = [message(domain) for _ in range(5)]
        ids = {m.event_id for m in messages}
        first, again = Inbox(lambda d: Retry(0.05) if d.attempt == 1 else Ack()), Inbox()
        async with consuming(broker, group, first, domain=domain):
            await broker.publish(messages)
            await eventually(lambda: holds(len(first.applied.keys() & ids) == 5))
        await broker.delete_group(group, domain)
        await broker.delete_group(group, domain)  # forgetting twice is fine
        async with consuming(broker, group, again, domain=domain):
            await eventually(lambda: holds(len(again.ids(ids)) == 5))
        assert {again.attempts(m.event_id)[0] for m in messages} == {1}


async def test_a_broker_restart_mid_stream_loses_nothing(own_kafka_server: LocalKafka) -> None:
    publisher = create_broker(own_kafka_server.url, **OPTIONS)
    subscriber = create_broker(own_kafka_server.url, **OPTIONS)
    await publisher.connect()
    await subscriber.connect()
    await publisher.ensure_streams(["accounts"])
    messages = [message(key=str(i % 50)) for i in range(3000)]
    ids = {m.event_id for m in messages}
    inbox = Inbox(work_seconds=0.01)

    async def relay() -> None:
        for start in range(0, len(messages), 100):
            await publish_until_confirmed(publisher, messages[start : start + 100])
            await asyncio.sleep(0.02)

    try:
        async with consuming(subscriber, "restart", inbox, batch_size=50):
            relaying = asyncio.create_task(relay())
            await eventually(lambda: holds(len(inbox.applied) >= 600), timeout=60)
            assert len(inbox.applied) < 3000, "too fast to restart in the middle"
            await asyncio.to_thread(own_kafka_server.restart)
            await relaying
            await eventually(
                lambda: holds(len(inbox.applied.keys() & ids) == 3000), timeout=120, interval=0.2
            )
    finally:
        await publisher.close()
        await subscriber.close()
    assert set(inbox.applied.values()) == {1}
