"""The broker contract on RabbitMQ (this machine's server, a virtual host per test), plus
RabbitMQ-only guarantees: reconnection after the server drops connections, a restart in
the middle of 10,000 events, and the retry topology."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ates.platform import migrations
from ates.platform.broker import Ack, Broker, BrokerUnavailable, Retry, create_broker
from ates.platform.consumer import EventConsumer
from ates.platform.db import Database
from ates.platform.events import Event, default_registry
from ates.platform.outbox import OutboxRelay
from ates.platform.tables import inbox, outbox
from ates.platform.uow import UnitOfWork
from ates.schemas.accounts import AccountCreated
from ates.testing.events import account_created
from ates.testing.servers import rabbitmqctl
from tests.backends import restart_rabbitmq
from tests.integration.broker_contract import (
    BrokerContract,
    Recorder,
    RestartBroker,
    consuming,
    unique_group,
)
from tests.rabbitmq_node import RabbitNode
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


class TestRabbitBroker(BrokerContract):
    @pytest.fixture
    def broker_url(self, rabbitmq_url: str) -> str:
        return rabbitmq_url

    @pytest.fixture
    def broker_options(self) -> dict[str, Any]:
        return {"reconnect_delay": 0.2}

    @pytest.fixture
    def restart_broker(self, own_rabbitmq: RabbitNode) -> RestartBroker:
        # a node of the test's own (rabbitmq_url points this test at it): never the
        # machine's shared server
        async def restart(while_down: Callable[[], Awaitable[None]] | None = None) -> None:
            await own_rabbitmq.restart(while_down)

        return restart

    async def test_consumers_and_publishers_reconnect_after_connections_are_dropped(
        self, broker: Broker, broker_url: str
    ) -> None:
        recorder = Recorder()
        before, after = account_created(), account_created()
        async with consuming(broker, unique_group("dropped"), recorder):
            await broker.publish([before])
            await eventually(lambda: _true(recorder.ids({before.event_id})))
            vhost = broker_url.rsplit("/", 1)[1]
            await rabbitmqctl("close_all_connections", "-p", vhost, "test: connection lost")
            await eventually(lambda: _published(broker, after), timeout=20)
            await eventually(lambda: _true(recorder.ids({after.event_id})), timeout=20)
        assert recorder.ids({before.event_id, after.event_id}) == Counter(
            {before.event_id: 1, after.event_id: 1}
        )

    async def test_retries_wait_in_a_delay_queue_and_come_back_in_order_of_delay(
        self, broker: Broker
    ) -> None:
        # Each delay has its own queue: a long delay never holds back a short one.
        slow, fast = account_created(), account_created()
        delays = {slow.event_id: 1.5, fast.event_id: 0.05}
        recorder = Recorder(lambda d: Retry(delays[_id(d)]) if d.attempt == 1 else Ack())
        async with consuming(broker, unique_group("delays"), recorder):
            await broker.publish([slow, fast])
            await eventually(lambda: _true(len(recorder.seen) >= 4), timeout=20)
        second_round = [event_id for event_id, attempt in recorder.seen if attempt == 2]
        assert second_round == [fast.event_id, slow.event_id]

    async def test_a_new_group_created_by_two_processes_at_once_gets_history_once(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        history = [account_created() for _ in range(300)]
        ids = {m.event_id for m in history}
        await broker.publish(history)
        group = unique_group("together")
        one, two = Recorder(), Recorder()
        tasks = [
            asyncio.create_task(broker.consume(group, "accounts", ["AccountCreated"], one)),
            asyncio.create_task(second_broker.consume(group, "accounts", ["AccountCreated"], two)),
        ]
        try:
            await eventually(lambda: _true(len(one.ids(ids) + two.ids(ids)) == 300), timeout=30)
            await asyncio.sleep(0.5)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert set((one.ids(ids) + two.ids(ids)).values()) == {1}

    async def test_a_deleted_group_reads_the_log_again_from_the_beginning(
        self, broker: Broker
    ) -> None:
        # What a rebuild does: forget the group, consume again.
        group = unique_group("rebuilt")
        messages = [account_created() for _ in range(5)]
        ids = {m.event_id for m in messages}
        first, again = Recorder(), Recorder()
        async with consuming(broker, group, first):
            await broker.publish(messages)
            await eventually(lambda: _true(len(first.ids(ids)) == 5))
        await broker.delete_group(group, "accounts")
        await broker.delete_group(group, "accounts")  # forgetting twice is fine
        async with consuming(broker, group, again):
            await eventually(lambda: _true(len(again.ids(ids)) == 5))
            await asyncio.sleep(0.3)
        assert set(again.ids(ids).values()) == {1}
        assert await broker.log_size("accounts") >= 5

    async def test_a_consumer_whose_queue_is_deleted_under_it_sets_the_group_up_again(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        # RabbitMQ cancels the consumer of a deleted queue (an operator's delete_queue, a
        # rebuild finishing); the consumer must not wait forever on a queue that is gone.
        group = unique_group("deleted")
        recorder = Recorder()
        before, after = account_created(), account_created()
        async with consuming(broker, group, recorder):
            await broker.publish([before])
            await eventually(lambda: _true(recorder.ids({before.event_id})))
            await second_broker.delete_group(group, "accounts")
            await eventually(lambda: _published(broker, after), timeout=20)
            await eventually(lambda: _true(recorder.ids({after.event_id})), timeout=20)


async def test_restart_in_the_middle_of_10000_events_applies_each_exactly_once(
    rabbitmq_url: str, tmp_path: Path
) -> None:
    """The whole path: outbox -> relay -> RabbitMQ -> consumer -> inbox, with the server
    stopped while events are flowing both into and out of it."""
    total = 10_000
    producer_db = Database(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
    consumer_db = Database(f"sqlite+aiosqlite:///{tmp_path / 'notifications.db'}")
    await migrations.upgrade("auth", producer_db)
    await migrations.upgrade("notifications", consumer_db)
    publisher = create_broker(rabbitmq_url, reconnect_delay=0.2)
    subscriber = create_broker(rabbitmq_url, reconnect_delay=0.2)
    await publisher.connect()
    await subscriber.connect()
    await publisher.ensure_streams(["accounts"])

    committed: Counter[str] = Counter()

    def count(event: Event | None, status: str) -> None:
        if event is not None and status == "applied":
            committed[str(event.event_id)] += 1

    async def noted(event: Event, uow: Any) -> None:
        """Applying is recording the event in the inbox (the consumer does that)."""

    consumer = EventConsumer(
        "notifications", consumer_db, {"AccountCreated": noted}, default_registry(), observer=count
    )
    relay = OutboxRelay("auth", producer_db, publisher, batch_size=500, poll_seconds=0.2)
    for _ in range(total // 1000):
        async with UnitOfWork(producer_db, "auth") as uow:
            people = [account_created() for _ in range(1000)]
            await uow.emit_many([AccountCreated.from_data(_data(m.body)) for m in people])
            await uow.commit()
    async with producer_db.reader() as session:
        ids: set[str] = set((await session.scalars(select(outbox.c.event_id))).all())
    assert len(ids) == total

    consume = asyncio.create_task(
        subscriber.consume("restart-10k", "accounts", ["AccountCreated"], consumer)
    )
    relaying = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _true(len(committed) >= total // 4), timeout=120)
        assert len(committed) < total, "too fast to restart in the middle"
        await restart_rabbitmq(down_seconds=2)
        await eventually(lambda: _true(len(committed) >= total), timeout=240, interval=0.5)
        await asyncio.sleep(1)  # anything still redelivered would show up now
    finally:
        for task in (consume, relaying):
            task.cancel()
        await asyncio.gather(consume, relaying, return_exceptions=True)
        await publisher.close()
        await subscriber.close()

    assert set(committed) == ids
    assert set(committed.values()) == {1}
    async with consumer_db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(inbox)) == total
    assert await relay.backlog() == 0
    await producer_db.dispose()
    await consumer_db.dispose()


def _data(body: bytes) -> dict[str, Any]:
    return Event.from_json(body).data


def _id(delivery: Any) -> str:
    return str(Event.from_json(delivery.body).event_id)


async def _true(value: object) -> object:
    return value


async def _published(broker: Broker, message: Any) -> bool:
    try:
        await broker.publish([message])
    except BrokerUnavailable:
        return False
    return True
