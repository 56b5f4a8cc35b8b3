"""The broker contract: what every adapter behind ``ates.platform.broker.Broker`` must do.

Subclass :class:`BrokerContract` once per adapter and provide the fixtures ``broker_url``
and ``restart_broker`` (stops the server, runs a callback while it is down, starts it).
Tests only look at messages they published themselves (their event ids), so an adapter
whose server is shared between tests can run the suite too.

Consuming is in batches (DESIGN.md "Batches"): the handler gets what is waiting, applies
it in one transaction, answers one outcome per message, and only then is anything
acknowledged. The batch cases at the end run the platform consumer on the broker: a
failure, a duplicate, a poison message inside one batch, and a crash between the
batch's commit and its acknowledgement.

No test sleeps to let something happen: each waits for a condition, and "nothing more
arrived" is shown with a *fence* — a message published after the others, on one stream
in publishing order, whose arrival means everything before it was delivered. Tests that
count deliveries first wait until a *warm-up* message went through: a group being set up
may deliver what is published meanwhile twice (RabbitMQ copies the log into a new group's
queue; the inbox drops the copy), which the port allows and these tests do not count.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
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
from ates.platform.tables import dead_letters, inbox, outbox
from ates.platform.uow import UnitOfWork
from ates.schemas.accounts import AccountCreated, AccountDeactivated
from ates.testing.events import account_created
from tests.support import eventually

RestartBroker = Callable[[Callable[[], Awaitable[None]] | None], Awaitable[None]]


def raw_message(body: bytes) -> OutgoingMessage:
    return OutgoingMessage(str(uuid.uuid4()), "accounts", "AccountCreated", body)


class Applied(list[str]):
    """An observer of the platform consumer: the ids of the events whose effects were
    committed, in order (what a handler saw may have been rolled back and redone)."""

    def __call__(self, event: Event | None, status: str) -> None:
        if event is not None and status == "applied":
            self.append(str(event.event_id))


class Recorder:
    """A batch handler that records what it saw and answers with a per-message policy."""

    def __init__(self, policy: Callable[[Delivery], Outcome] | None = None) -> None:
        self.seen: list[tuple[str, int]] = []  # (event_id, attempt)
        self.batches: list[int] = []  # the size of each batch handed over
        self.policy = policy or (lambda _d: Ack())

    async def __call__(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        self.batches.append(len(deliveries))
        for delivery in deliveries:
            event = Event.from_json(delivery.body)
            self.seen.append((str(event.event_id), delivery.attempt))
        return [self.policy(delivery) for delivery in deliveries]

    def ids(self, only: set[str]) -> Counter[str]:
        return Counter(event_id for event_id, _ in self.seen if event_id in only)

    def has(self, *messages: OutgoingMessage) -> Callable[[], Awaitable[bool]]:
        """A condition for :func:`eventually`: every one of ``messages`` arrived."""
        wanted = {m.event_id for m in messages}

        async def check() -> bool:
            return set(self.ids(wanted)) == wanted

        return check


def unique_group(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def consuming(
    broker: Broker,
    group: str,
    handler: Any,
    names: tuple[str, ...] | None = ("AccountCreated",),
    *,
    batch_size: int = 64,
) -> AsyncIterator[None]:
    """Consume in the background for the duration of the block. A new group starts at the
    beginning of the log, so messages published before the group is bound arrive too."""
    task = asyncio.create_task(
        broker.consume(
            group,
            "accounts",
            None if names is None else list(names),
            handler,
            batch_size=batch_size,
        )
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def warm_up(broker: Broker, *recorders: Recorder, any_of: bool = False) -> None:
    """Publish one message and wait until it reached every recorder (``any_of``: one of
    them, for processes of one group): the groups are set up and consuming."""
    message = account_created()
    await broker.publish([message])
    checks = [recorder.has(message) for recorder in recorders]

    async def arrived() -> bool:
        results = [await check() for check in checks]
        return any(results) if any_of else all(results)

    await eventually(arrived, timeout=30)


class BrokerFixtures:
    """Two connected brokers on the ``broker_url`` and ``broker_options`` a test class
    supplies: the contract's, and an adapter's own tests'."""

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


class BrokerContract(BrokerFixtures):
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
    async def db(self, tmp_path: Path) -> AsyncIterator[Database]:
        database = Database(f"sqlite:///{tmp_path / 'consumer.db'}")
        await migrations.upgrade("notifications", database)
        yield database
        await database.dispose()

    # --- delivery -------------------------------------------------------------------

    async def test_each_group_gets_every_message_once(self, broker: Broker) -> None:
        first, second = Recorder(), Recorder()
        messages = [account_created() for _ in range(50)]
        fence = account_created()
        ids = {m.event_id for m in messages}
        async with (
            consuming(broker, unique_group("a"), first),
            consuming(broker, unique_group("b"), second),
        ):
            await warm_up(broker, first, second)
            await broker.publish(messages)
            await broker.publish([fence])
            await eventually(first.has(*messages, fence))
            await eventually(second.has(*messages, fence))
        assert set(first.ids(ids).values()) == {1}
        assert set(second.ids(ids).values()) == {1}

    async def test_what_is_waiting_comes_in_batches_of_at_most_batch_size(
        self, broker: Broker
    ) -> None:
        messages = [account_created() for _ in range(50)]
        await broker.publish(messages)
        recorder = Recorder()
        async with consuming(broker, unique_group("batches"), recorder, batch_size=16):
            await eventually(recorder.has(*messages))
        assert max(recorder.batches) <= 16
        assert max(recorder.batches) > 1, "a waiting backlog must not come one at a time"

    async def test_order_of_one_publisher_is_kept_per_key(self, broker: Broker) -> None:
        recorder = Recorder()
        key = str(uuid.uuid4())  # one aggregate: its events must arrive in order
        messages = [account_created(key=key) for _ in range(20)]
        ids = {m.event_id for m in messages}
        async with consuming(broker, unique_group("order"), recorder):
            await broker.publish(messages)
            await eventually(recorder.has(*messages))
        assert [e for e, _ in recorder.seen if e in ids] == [m.event_id for m in messages]

    async def test_processes_of_one_group_share_the_work(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        group = unique_group("shared")
        one, two = Recorder(), Recorder()
        messages = [account_created() for _ in range(200)]
        ids = {m.event_id for m in messages}

        async def both_have_all() -> bool:
            return set(one.ids(ids) + two.ids(ids)) == ids

        async with consuming(broker, group, one), consuming(second_broker, group, two):
            await warm_up(broker, one, two, any_of=True)
            await broker.publish(messages)
            await eventually(both_have_all)
        together = one.ids(ids) + two.ids(ids)
        assert set(together.values()) == {1}, "a message went to both processes"

    async def test_new_group_starts_at_the_beginning_of_the_log(self, broker: Broker) -> None:
        messages = [account_created() for _ in range(10)]
        await broker.publish(messages)
        late = Recorder()
        async with consuming(broker, unique_group("late"), late):
            await eventually(late.has(*messages))
        assert await broker.log_size("accounts") >= 10

    async def test_group_resumes_where_it_stood(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        group = unique_group("resume")
        before, after = Recorder(), Recorder()
        first = [account_created() for _ in range(5)]
        second = [account_created() for _ in range(5)]
        fence = account_created()
        async with consuming(broker, group, before):
            await broker.publish(first)
            await eventually(before.has(*first))
        await broker.close()  # the process went away
        await second_broker.publish(second)
        await second_broker.publish([fence])
        async with consuming(second_broker, group, after):
            # A pull request of the old process may have caught a message just before it
            # went away; it comes back after the ack timeout, which the adapters' test
            # options keep short. Everything arrives, fence last.
            await eventually(after.has(*second, fence), timeout=60)
        assert not after.ids({m.event_id for m in first}), "acked messages came back"

    async def test_lag_is_what_the_group_has_not_acknowledged(self, broker: Broker) -> None:
        group = unique_group("lag")
        assert await broker.lag(group, "accounts") is None, "an unknown group has no lag"
        recorder = Recorder()

        def lag_is(expected: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return await broker.lag(group, "accounts") == expected

            return check

        async with consuming(broker, group, recorder):
            await warm_up(broker, recorder)
            await eventually(lag_is(0), timeout=30)
        # The group's processes are gone: what is published now waits for them.
        before = await broker.lag(group, "accounts")
        assert before is not None
        waiting = [account_created() for _ in range(7)]
        await broker.publish(waiting)
        await eventually(lag_is(before + 7), timeout=30)
        async with consuming(broker, group, recorder):
            await eventually(recorder.has(*waiting), timeout=30)
            await eventually(lag_is(0), timeout=30)

    # --- failures -------------------------------------------------------------------

    async def test_retry_redelivers_and_counts_attempts(self, broker: Broker) -> None:
        recorder = Recorder(lambda d: Retry(0.05) if d.attempt < 3 else Ack())
        message = account_created()

        async def third_attempt() -> bool:
            return (message.event_id, 3) in recorder.seen

        async with consuming(broker, unique_group("retry"), recorder):
            await broker.publish([message])
            await eventually(third_attempt)
        attempts = [a for e, a in recorder.seen if e == message.event_id]
        assert attempts == [1, 2, 3]

    async def test_a_retry_does_not_hold_back_the_rest_of_its_batch(self, broker: Broker) -> None:
        slow = account_created()
        others = [account_created() for _ in range(10)]
        recorder = Recorder(lambda d: Retry(0.5) if _id(d) == slow.event_id else Ack())
        await broker.publish([slow, *others])
        async with consuming(broker, unique_group("partial"), recorder):
            await eventually(recorder.has(*others))

            async def slow_again() -> bool:
                return recorder.ids({slow.event_id})[slow.event_id] >= 2

            await eventually(slow_again)
        assert set(recorder.ids({m.event_id for m in others}).values()) == {1}

    async def test_crash_before_ack_redelivers(self, broker: Broker, second_broker: Broker) -> None:
        group = unique_group("crash")
        started = asyncio.Event()

        async def hang(deliveries: Sequence[Delivery]) -> list[Outcome]:
            started.set()
            await asyncio.sleep(3600)  # the process dies here, before any ack
            return [Ack()] * len(deliveries)

        message = account_created()
        await broker.publish([message])
        task = asyncio.create_task(broker.consume(group, "accounts", ["AccountCreated"], hang))
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await broker.close()  # the connection goes away with the process

        survivor = Recorder()
        async with consuming(second_broker, group, survivor):
            await eventually(survivor.has(message), timeout=60)

    async def test_a_handler_that_raises_gets_the_whole_batch_again(self, broker: Broker) -> None:
        messages = [account_created() for _ in range(5)]
        calls: list[int] = []
        recorder = Recorder()

        async def flaky(deliveries: Sequence[Delivery]) -> Sequence[Outcome]:
            calls.append(len(deliveries))
            if len(calls) == 1:
                raise RuntimeError("the database went away mid-batch")
            return await recorder(deliveries)

        await broker.publish(messages)
        async with consuming(broker, unique_group("raises"), flaky):
            await eventually(recorder.has(*messages), timeout=60)

    async def test_publish_while_broker_down_raises_and_recovers(
        self, broker: Broker, restart_broker: RestartBroker
    ) -> None:
        recorder = Recorder()
        before, after = account_created(), account_created()
        async with consuming(broker, unique_group("restart"), recorder):
            await broker.publish([before])
            await eventually(recorder.has(before))

            async def while_down() -> None:
                with pytest.raises(BrokerUnavailable):
                    await broker.publish([account_created()])

            await restart_broker(while_down)
            await eventually(lambda: _retry_publish(broker, after), timeout=30)
            await eventually(recorder.has(after), timeout=30)

    # --- the platform consumer on this broker: batches ------------------------------

    async def test_duplicates_are_applied_once(self, broker: Broker, db: Database) -> None:
        applied: list[str] = []

        async def handler(event: Event, uow: Any) -> None:
            applied.append(str(event.event_id))

        consumer = EventConsumer(
            "notifications", db, {"AccountCreated": handler}, default_registry()
        )
        message, fence = account_created(), account_created()
        async with consuming(broker, unique_group("dedup"), consumer):
            await broker.publish([message])
            await eventually(lambda: _async(applied))
            await broker.publish([message])  # the relay crashed before marking it sent
            await broker.publish([fence])
            await eventually(lambda: _async(fence.event_id in applied))
        assert applied == [message.event_id, fence.event_id]
        assert await _inbox_size(db) == 2

    async def test_a_duplicate_inside_one_batch_is_applied_once(self, db: Database) -> None:
        applied: list[str] = []

        async def handler(event: Event, uow: Any) -> None:
            applied.append(str(event.event_id))

        consumer = EventConsumer(
            "notifications", db, {"AccountCreated": handler}, default_registry()
        )
        message, other = account_created(), account_created()
        outcomes = await consumer([_delivery(message), _delivery(other), _delivery(message)])
        assert outcomes == [Ack(), Ack(), Ack()]
        assert applied == [message.event_id, other.event_id]
        assert await _inbox_size(db) == 2

    async def test_a_failure_inside_a_batch_rolls_back_alone(
        self, broker: Broker, db: Database
    ) -> None:
        """One event's handler fails after writing: its writes and inbox row roll back
        to its savepoint, it is retried on its own, and the others commit once."""
        failing_once = account_created(username="flaky")
        good = [account_created() for _ in range(9)]
        failures: list[str] = []
        applied: Counter[str] = Counter()  # told after each commit, so only what stuck

        async def handler(event: Event, uow: UnitOfWork) -> None:
            created = AccountCreated.of(event)
            await uow.emit(AccountDeactivated(created.public_id))
            if created.username == "flaky" and not failures:
                failures.append(str(event.event_id))
                raise RuntimeError("a lost lock, once")

        def observe(event: Event | None, status: str) -> None:
            if event is not None and status == "applied":
                applied[str(event.event_id)] += 1

        consumer = EventConsumer(
            "notifications",
            db,
            {"AccountCreated": handler},
            default_registry(),
            backoff_seconds=0.05,
            observer=observe,
        )
        everything = [*good[:4], failing_once, *good[4:]]
        await broker.publish(everything)
        async with consuming(broker, unique_group("savepoint"), consumer):
            await eventually(lambda: _async(len(applied) == 10), timeout=30)
        assert set(applied.values()) == {1}
        assert failures == [failing_once.event_id]
        assert await _inbox_size(db) == 10
        assert await _outbox_size(db) == 10, "the failed attempt's event was rolled back"

    async def test_a_poison_message_inside_a_batch_is_dead_lettered_alone(
        self, broker: Broker, db: Database
    ) -> None:
        applied = Applied()

        async def handler(event: Event, uow: Any) -> None:
            if event.data["username"] == "poison":
                raise Rejected("this person can never be applied")

        consumer = EventConsumer(
            "notifications",
            db,
            {"AccountCreated": handler},
            default_registry(),
            max_deliveries=5,
            observer=applied,
        )
        good = [account_created() for _ in range(6)]
        deep = b'{"a":' * 5000 + b"1" + b"}" * 5000  # RecursionError in a naive parser
        poison = [
            raw_message(b"{not json"),
            raw_message(deep),
            raw_message(b'{"event_name": "AccountCreated"}'),
            account_created(username="poison"),
            _invalid_account_created(),
        ]
        await broker.publish([good[0], poison[0], good[1], poison[1], good[2], poison[2]])
        await broker.publish([good[3], poison[3], good[4], poison[4], good[5]])
        async with consuming(broker, unique_group("poison"), consumer):
            letters = await eventually(
                lambda: _async_value(_dead_letters(db), lambda rows: len(rows) == 5), timeout=30
            )
            await eventually(lambda: _async(len(applied) == 6))
        assert sorted(applied) == sorted(m.event_id for m in good)
        reasons = sorted(letter.error.split(":")[0] for letter in letters)
        assert reasons == ["invalid", "invalid", "invalid", "invalid", "rejected"]
        assert all(letter.attempts == 1 for letter in letters)
        schema_invalid = [letter for letter in letters if "public_id" in letter.error]
        assert schema_invalid, "the schema's complaint names the field"
        assert schema_invalid[0].event_id == poison[4].event_id, "the envelope's id is kept"
        assert schema_invalid[0].event_name == "AccountCreated"

    async def test_a_crash_between_commit_and_ack_applies_the_batch_once(
        self, broker: Broker, second_broker: Broker, db: Database
    ) -> None:
        applied: Counter[str] = Counter()

        async def handler(event: Event, uow: Any) -> None:
            applied[str(event.event_id)] += 1

        consumer = EventConsumer(
            "notifications", db, {"AccountCreated": handler}, default_registry()
        )
        committed = asyncio.Event()

        async def commit_then_die(deliveries: Sequence[Delivery]) -> list[Outcome]:
            await consumer(deliveries)  # applied and committed
            committed.set()
            await asyncio.sleep(3600)  # the process is killed before it acknowledges
            return []

        group = unique_group("commit-ack")
        messages = [account_created() for _ in range(10)]
        await broker.publish(messages)
        task = asyncio.create_task(
            broker.consume(group, "accounts", ["AccountCreated"], commit_then_die)
        )
        await asyncio.wait_for(committed.wait(), 30)
        first_batch = {event_id for event_id in applied}
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await broker.close()

        survivor = Recorder()

        async def survivor_then_consumer(deliveries: Sequence[Delivery]) -> Sequence[Outcome]:
            await survivor(deliveries)
            return await consumer(deliveries)

        async with consuming(second_broker, group, survivor_then_consumer):
            # The unacknowledged batch comes again; the inbox skips what it applied.
            await eventually(survivor.has(*messages), timeout=60)
            await eventually(lambda: _async(len(applied) == len(messages)))
        assert first_batch <= set(survivor.ids(first_batch)), "the batch was redelivered"
        assert set(applied.values()) == {1}
        assert await _inbox_size(db) == len(messages)

    async def test_an_event_name_nobody_registered_is_dead_lettered_not_lost(
        self, broker: Broker, db: Database
    ) -> None:
        """The platform's consumers take every message of a domain (``event_names=None``):
        a name the registry does not know goes to the dead letters; a registered one this
        service does not handle is skipped; nothing vanishes silently."""
        applied = Applied()
        consumer = EventConsumer(
            "notifications", db, {"AccountCreated": _nothing}, default_registry(), observer=applied
        )
        key = str(uuid.uuid4())  # one partition of a partitioned log: the fence comes last
        created = account_created(key=key)
        stranger = OutgoingMessage(
            str(uuid.uuid4()),
            "accounts",
            "AccountExploded",
            Event("AccountExploded", 1, {"public_id": str(uuid.uuid4())}, "elsewhere")
            .to_json()
            .encode(),
            key=key,
        )
        deactivated = Event("AccountDeactivated", 1, {"public_id": str(uuid.uuid4())}, "auth")
        not_ours = OutgoingMessage(
            str(deactivated.event_id),
            "accounts",
            "AccountDeactivated",
            deactivated.to_json().encode(),
            key=key,
        )
        fence = account_created(key=key)
        await broker.publish([created, stranger, not_ours, fence])
        async with consuming(broker, unique_group("names"), consumer, names=None):
            await eventually(lambda: _async(fence.event_id in applied), timeout=30)
        letters = await _dead_letters(db)
        assert [(letter.event_name, letter.subject) for letter in letters] == [
            ("AccountExploded", "accounts.AccountExploded")
        ]
        assert "AccountExploded" in letters[0].error
        assert applied == [created.event_id, fence.event_id]
        assert await _inbox_size(db) == 2  # the event it does not handle left no trace

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
        assert len(attempts) == 3
        assert letters[0].event_id == message.event_id
        assert "database of a friend" in letters[0].error
        assert letters[0].attempts == 3


def _id(delivery: Delivery) -> str:
    return str(Event.from_json(delivery.body).event_id)


def _delivery(message: OutgoingMessage, attempt: int = 1) -> Delivery:
    return Delivery(body=message.body, subject=message.subject, attempt=attempt)


def _invalid_account_created() -> OutgoingMessage:
    invalid = Event(
        event_name="AccountCreated",
        event_version=1,
        producer="test",
        data={"public_id": "not-a-uuid", "username": "x"},
    )
    return OutgoingMessage(
        str(invalid.event_id), "accounts", "AccountCreated", invalid.to_json().encode()
    )


async def _async(value: Any) -> Any:
    return value


async def _nothing(event: Event, uow: Any) -> None:
    """A handler with no effect beyond the inbox row the consumer writes."""


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


async def _inbox_size(db: Database) -> int:
    async with db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(inbox)) or 0)


async def _outbox_size(db: Database) -> int:
    async with db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)
