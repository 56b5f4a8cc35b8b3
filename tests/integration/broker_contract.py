"""The broker contract: what every adapter behind ``ates.platform.broker.Broker`` must do.

Subclass :class:`BrokerContract` once per adapter and provide the fixtures ``broker_url``
and ``restart_broker`` (stops the server, runs a callback while it is down, starts it).
Tests only look at messages they published themselves (their event ids), so an adapter
whose server is shared between tests can run the suite too.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ates.platform import migrations
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
from ates.platform.consumer import EventConsumer, Rejected
from ates.platform.db import Database
from ates.platform.events import Event, default_registry
from ates.platform.tables import dead_letters, inbox
from tests.support import eventually

RestartBroker = Callable[[Callable[[], Awaitable[None]] | None], Awaitable[None]]


def account_created(event_id: str | None = None) -> OutgoingMessage:
    person = str(uuid.uuid4())
    event = Event(
        event_name="AccountCreated",
        event_version=1,
        producer="test",
        data={
            "public_id": person,
            "username": f"u{person[:8]}",
            "email": "u@example.com",
            "full_name": "U",
            "role": "worker",
        },
        **({"event_id": uuid.UUID(event_id)} if event_id else {}),
    )
    return OutgoingMessage(
        str(event.event_id), "accounts", "AccountCreated", event.to_json().encode()
    )


class Recorder:
    """A delivery handler that records what it saw and answers with a policy."""

    def __init__(self, policy: Callable[[Delivery], Outcome] | None = None) -> None:
        self.seen: list[tuple[str, int]] = []  # (event_id, attempt)
        self.policy = policy or (lambda _d: Ack())

    async def __call__(self, delivery: Delivery) -> Outcome:
        event = Event.from_json(delivery.body)
        self.seen.append((str(event.event_id), delivery.attempt))
        return self.policy(delivery)

    def ids(self, only: set[str]) -> Counter[str]:
        return Counter(event_id for event_id, _ in self.seen if event_id in only)


def unique_group(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def consuming(
    broker: Broker, group: str, handler: Any, names: tuple[str, ...] = ("AccountCreated",)
) -> AsyncIterator[None]:
    task = asyncio.create_task(broker.consume(group, "accounts", list(names), handler))
    try:
        await asyncio.sleep(0.3)  # let the group bind before the test publishes
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class BrokerContract:
    @pytest.fixture
    def broker_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def restart_broker(self) -> RestartBroker:
        raise NotImplementedError

    @pytest.fixture
    def broker_options(self) -> dict[str, Any]:
        """Adapter options for the tests (e.g. a short ack timeout)."""
        return {}

    @pytest.fixture
    async def broker(
        self, broker_url: str, broker_options: dict[str, Any]
    ) -> AsyncIterator[Broker]:
        broker = create_broker(broker_url, **broker_options)
        await broker.connect()
        await broker.ensure_streams(["accounts"])
        yield broker
        await broker.close()

    @pytest.fixture
    async def second_broker(
        self, broker_url: str, broker_options: dict[str, Any]
    ) -> AsyncIterator[Broker]:
        broker = create_broker(broker_url, **broker_options)
        await broker.connect()
        yield broker
        await broker.close()

    @pytest.fixture
    async def db(self, tmp_path: Path) -> AsyncIterator[Database]:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'consumer.db'}")
        await migrations.upgrade("notifications", database)
        yield database
        await database.dispose()

    # --- delivery -------------------------------------------------------------------

    async def test_each_group_gets_every_message_once(self, broker: Broker) -> None:
        first, second = Recorder(), Recorder()
        messages = [account_created() for _ in range(50)]
        ids = {m.event_id for m in messages}
        async with (
            consuming(broker, unique_group("a"), first),
            consuming(broker, unique_group("b"), second),
        ):
            await broker.publish(messages)
            await eventually(lambda: _async(len(first.ids(ids)) == 50 == len(second.ids(ids))))
            await asyncio.sleep(0.5)  # nothing more arrives
        assert set(first.ids(ids).values()) == {1}
        assert set(second.ids(ids).values()) == {1}

    async def test_order_of_one_publisher_is_kept(self, broker: Broker) -> None:
        recorder = Recorder()
        messages = [account_created() for _ in range(20)]
        ids = {m.event_id for m in messages}
        async with consuming(broker, unique_group("order"), recorder):
            await broker.publish(messages)
            await eventually(lambda: _async(len(recorder.ids(ids)) == 20))
        assert [e for e, _ in recorder.seen if e in ids] == [m.event_id for m in messages]

    async def test_processes_of_one_group_share_the_work(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        group = unique_group("shared")
        one, two = Recorder(), Recorder()
        messages = [account_created() for _ in range(200)]
        ids = {m.event_id for m in messages}
        async with consuming(broker, group, one), consuming(second_broker, group, two):
            await broker.publish(messages)
            await eventually(lambda: _async(len(one.ids(ids)) + len(two.ids(ids)) >= 200))
            await asyncio.sleep(0.5)
        together = one.ids(ids) + two.ids(ids)
        assert set(together) == ids
        assert set(together.values()) == {1}, "a message went to both processes"

    async def test_new_group_starts_at_the_beginning_of_the_log(self, broker: Broker) -> None:
        messages = [account_created() for _ in range(10)]
        ids = {m.event_id for m in messages}
        await broker.publish(messages)
        late = Recorder()
        async with consuming(broker, unique_group("late"), late):
            await eventually(lambda: _async(len(late.ids(ids)) == 10))
        assert await broker.log_size("accounts") >= 10

    async def test_group_resumes_where_it_stood(self, broker: Broker) -> None:
        group = unique_group("resume")
        before, after = Recorder(), Recorder()
        first = [account_created() for _ in range(5)]
        second = [account_created() for _ in range(5)]
        async with consuming(broker, group, before):
            await broker.publish(first)
            await eventually(lambda: _async(len(before.ids({m.event_id for m in first})) == 5))
        # A pull request of the stopped process may still be open on the server for a
        # moment (NATS: up to the fetch expiry); a message it caught would come back only
        # after the ack timeout. A real restart takes longer than that anyway.
        await asyncio.sleep(1.5)
        await broker.publish(second)
        async with consuming(broker, group, after):
            await eventually(lambda: _async(len(after.ids({m.event_id for m in second})) == 5))
            await asyncio.sleep(0.5)
        assert not after.ids({m.event_id for m in first}), "acked messages came back"

    # --- failures -------------------------------------------------------------------

    async def test_retry_redelivers_and_counts_attempts(self, broker: Broker) -> None:
        recorder = Recorder(lambda d: Retry(0.05) if d.attempt < 3 else Ack())
        message = account_created()
        async with consuming(broker, unique_group("retry"), recorder):
            await broker.publish([message])
            await eventually(lambda: _async(len(recorder.seen) >= 3))
            await asyncio.sleep(0.5)
        attempts = [a for e, a in recorder.seen if e == message.event_id]
        assert attempts == [1, 2, 3]

    async def test_crash_before_ack_redelivers(self, broker: Broker, second_broker: Broker) -> None:
        group = unique_group("crash")
        started = asyncio.Event()

        async def hang(delivery: Delivery) -> Outcome:
            started.set()
            await asyncio.sleep(3600)  # the process dies here, before any ack
            return Ack()

        message = account_created()
        task = asyncio.create_task(broker.consume(group, "accounts", ["AccountCreated"], hang))
        await asyncio.sleep(0.3)
        await broker.publish([message])
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await broker.close()  # the connection goes away with the process

        survivor = Recorder()
        async with consuming(second_broker, group, survivor):
            await eventually(lambda: _async(survivor.ids({message.event_id})), timeout=60)

    async def test_publish_while_broker_down_raises_and_recovers(
        self, broker: Broker, restart_broker: RestartBroker
    ) -> None:
        recorder = Recorder()
        before, after = account_created(), account_created()
        async with consuming(broker, unique_group("restart"), recorder):
            await broker.publish([before])
            await eventually(lambda: _async(recorder.ids({before.event_id})))

            async def while_down() -> None:
                with pytest.raises(BrokerUnavailable):
                    await broker.publish([account_created()])

            await restart_broker(while_down)
            await eventually(lambda: _retry_publish(broker, after), timeout=30)
            await eventually(lambda: _async(recorder.ids({after.event_id})), timeout=30)

    # --- the platform consumer on this broker ----------------------------------------

    async def test_duplicates_are_applied_once(self, broker: Broker, db: Database) -> None:
        applied: list[str] = []

        async def handler(event: Event, uow: Any) -> None:
            applied.append(str(event.event_id))

        consumer = EventConsumer(
            "notifications", db, {"AccountCreated": handler}, default_registry()
        )
        message = account_created()
        async with consuming(broker, unique_group("dedup"), consumer):
            await broker.publish([message])
            await asyncio.sleep(0.2)
            await broker.publish([message])  # the relay crashed before marking it sent
            await eventually(lambda: _async(applied))
            await asyncio.sleep(0.5)
        assert applied == [message.event_id]
        async with db.reader() as session:
            assert await session.scalar(select(func.count()).select_from(inbox)) == 1

    async def test_failing_event_is_dead_lettered_after_max_deliveries(
        self, broker: Broker, db: Database
    ) -> None:
        attempts: list[int] = []

        async def handler(event: Event, uow: Any) -> None:
            attempts.append(1)
            raise RuntimeError("the database of a friend is down")

        consumer = EventConsumer(
            "notifications",
            db,
            {"AccountCreated": handler},
            default_registry(),
            max_deliveries=3,
            backoff_seconds=0.02,
        )
        message = account_created()
        async with consuming(broker, unique_group("dlq"), consumer):
            await broker.publish([message])
            letters = await eventually(lambda: _dead_letters(db), timeout=30)
            await asyncio.sleep(0.5)
        assert len(attempts) == 3
        assert letters[0].event_id == message.event_id
        assert "database of a friend" in letters[0].error
        assert letters[0].attempts == 3

    async def test_invalid_and_rejected_events_are_dead_lettered_at_once(
        self, broker: Broker, db: Database
    ) -> None:
        async def handler(event: Event, uow: Any) -> None:
            if event.data["username"] == "poison":
                raise Rejected("this person can never be applied")

        consumer = EventConsumer(
            "notifications", db, {"AccountCreated": handler}, default_registry(), max_deliveries=5
        )
        invalid = Event(
            event_name="AccountCreated",
            event_version=1,
            producer="test",
            data={"public_id": "not-a-uuid", "username": "x"},
        )
        poison = Event(
            event_name="AccountCreated",
            event_version=1,
            producer="test",
            data={
                "public_id": str(uuid.uuid4()),
                "username": "poison",
                "email": "p@example.com",
                "full_name": "P",
                "role": "worker",
            },
        )
        async with consuming(broker, unique_group("invalid"), consumer):
            await broker.publish(
                [
                    OutgoingMessage(
                        str(invalid.event_id),
                        "accounts",
                        "AccountCreated",
                        invalid.to_json().encode(),
                    ),
                    OutgoingMessage(str(uuid.uuid4()), "accounts", "AccountCreated", b"{not json"),
                    OutgoingMessage(
                        str(poison.event_id),
                        "accounts",
                        "AccountCreated",
                        poison.to_json().encode(),
                    ),
                ]
            )
            letters = await eventually(
                lambda: _async_value(_dead_letters(db), lambda rows: len(rows) == 3)
            )
        reasons = sorted(letter.error.split(":")[0] for letter in letters)
        assert reasons == ["invalid", "invalid", "rejected"]
        assert all(letter.attempts == 1 for letter in letters)
        assert any("public_id" in letter.error for letter in letters)


async def _async(value: Any) -> Any:
    return value


async def _async_value(awaitable: Awaitable[Any], predicate: Callable[[Any], bool]) -> Any:
    value = await awaitable
    return value if predicate(value) else None


async def _retry_publish(broker: Broker, message: OutgoingMessage) -> bool:
    try:
        await broker.publish([message])
    except BrokerUnavailable:
        return False
    return True


async def _dead_letters(db: Database) -> list[Any]:
    async with db.reader() as session:
        return list((await session.execute(select(dead_letters).order_by(dead_letters.c.id))).all())
