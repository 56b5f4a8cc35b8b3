"""The platform's messaging tables: the outbox (events written with the state change,
published by the relay, never lost), the inbox (an event applied once, even by two
processes at once) and the dead letters (stored, listed, replayed once, discarded)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from ates.platform import deadletters, migrations
from ates.platform.broker import (
    Ack,
    BrokerUnavailable,
    Delivery,
    OutgoingMessage,
    Retry,
    create_broker,
)
from ates.platform.broker.nats.adapter import NatsBroker
from ates.platform.broker.nats.server import EmbeddedNats
from ates.platform.consumer import EventConsumer
from ates.platform.db import Database
from ates.platform.events import Event, InvalidEvent, default_registry
from ates.platform.outbox import OutboxRelay
from ates.platform.tables import dead_letters, inbox, outbox
from ates.platform.uow import UnitOfWork
from ates.schemas.accounts import AccountCreated
from ates.testing.events import account_created
from tests.integration.broker_contract import Recorder, consuming
from tests.integration.database_contract.base import DatabaseBase, LockWatch
from tests.support import eventually, store_dead_letter


def delivery(message: OutgoingMessage, attempt: int = 1) -> Delivery:
    return Delivery(body=message.body, subject=message.subject, attempt=attempt)


def person() -> dict[str, Any]:
    return Event.from_json(account_created().body).data


async def count(db: Database, table: Any, *where: Any) -> int:
    async with db.reader() as session:
        found = await session.scalar(select(func.count()).select_from(table).where(*where))
    return int(found or 0)


async def unsent(db: Database) -> int:
    return await count(db, outbox, outbox.c.published_at.is_(None))


class RefusingBroker(NatsBroker):
    """The real NATS adapter, refusing every publish while ``refusing`` is on, as the port
    says a broker that cannot confirm does (``BrokerUnavailable``). Stopping the NATS
    server does not reliably take the relay down that path: its client buffers
    publishes while it reconnects, and a short outage ends before the publish times
    out. What the broker confirmed is counted per event id: NATS's dedup would hide a
    second publish from a consumer."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.refusing = False
        self.refused = 0
        self.confirmed: Counter[str] = Counter()

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if self.refusing:
            self.refused += 1
            raise BrokerUnavailable("publish refused: the broker is down")
        await super().publish(messages)
        self.confirmed.update(m.event_id for m in messages)


class OutboxContract(DatabaseBase):
    @pytest.fixture
    async def auth_db(self, database_url: str) -> AsyncIterator[Database]:
        database = Database(database_url)
        await migrations.upgrade("auth", database)
        yield database
        await database.dispose()

    async def test_an_invalid_event_raises_before_anything_is_written(
        self, auth_db: Database
    ) -> None:
        with pytest.raises(InvalidEvent, match="role"):
            async with UnitOfWork(auth_db, "auth") as uow:
                await uow.emit_data("AccountCreated", {**person(), "role": "pirate"})
                await uow.commit()
        assert await count(auth_db, outbox) == 0

    async def test_a_rolled_back_transaction_leaves_no_event(self, auth_db: Database) -> None:
        async with UnitOfWork(auth_db, "auth") as uow:
            await uow.emit(AccountCreated.from_data(person()))
            # no commit: the block ends, the transaction is rolled back
        assert await count(auth_db, outbox) == 0

    async def test_relay_wakes_on_commit_and_rows_wait_while_broker_is_down(
        self, auth_db: Database, nats_server: EmbeddedNats
    ) -> None:
        broker = create_broker(nats_server.url)
        await broker.connect()
        attempts = 0
        publish = broker.publish

        async def counting_publish(*args: Any, **kwargs: Any) -> Any:
            # the real adapter's publish, counting the relay's attempts
            nonlocal attempts
            attempts += 1
            return await publish(*args, **kwargs)

        broker.publish = counting_publish  # type: ignore[method-assign]
        relay = OutboxRelay("auth", auth_db, broker, poll_seconds=30)  # polling: too slow
        recorder = Recorder()
        relay_task = asyncio.create_task(relay.run())
        try:
            async with consuming(broker, "watcher", recorder):
                async with UnitOfWork(auth_db, "auth") as uow:
                    first = await uow.emit(AccountCreated.from_data(person()))
                    await uow.commit()
                await eventually(lambda: _has(recorder, str(first.event_id)), timeout=5)

                port = nats_server.port
                await asyncio.to_thread(nats_server.stop)
                async with UnitOfWork(auth_db, "auth") as uow:
                    waiting = [await uow.emit(AccountCreated.from_data(person())) for _ in range(3)]
                    await uow.commit()
                tried = attempts
                await eventually(lambda: _true(attempts > tried))  # the relay woke, tries
                assert await unsent(auth_db) == 3, "rows must wait while the broker is down"

                nats_server.requested_port = port
                await asyncio.to_thread(nats_server.start)
                for event in waiting:
                    await eventually(_arrived(recorder, str(event.event_id)), timeout=40)
                await eventually(lambda: _none_unsent(auth_db), timeout=40)  # once confirmed
        finally:
            relay_task.cancel()
            await broker.close()

    async def test_rows_refused_by_the_broker_stay_unsent_then_go_out_once(
        self, auth_db: Database, nats_url: str
    ) -> None:
        broker = RefusingBroker(nats_url)
        await broker.connect()
        relay = OutboxRelay("auth", auth_db, broker, poll_seconds=0.05, max_backoff_seconds=0.1)
        relay_task: asyncio.Task[None] | None = None
        try:
            async with UnitOfWork(auth_db, "auth") as uow:
                events = [await uow.emit(AccountCreated.from_data(person())) for _ in range(3)]
                await uow.commit()
            broker.refusing = True
            # One round by hand: the refusal reaches the caller, and no row is marked.
            with pytest.raises(BrokerUnavailable):
                await relay.publish_pending()
            assert await unsent(auth_db) == 3

            # The relay's loop keeps trying while rows keep coming; none is marked sent.
            relay_task = asyncio.create_task(relay.run())
            async with UnitOfWork(auth_db, "auth") as uow:
                events += [await uow.emit(AccountCreated.from_data(person())) for _ in range(2)]
                await uow.commit()
            tried = broker.refused
            await eventually(lambda: _true(broker.refused >= tried + 3))
            assert await unsent(auth_db) == 5, "a row refused by the broker was marked sent"
            assert not broker.confirmed

            broker.refusing = False
            await eventually(lambda: _none_unsent(auth_db))
        finally:
            if relay_task is not None:
                relay_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay_task
            await broker.close()
        assert broker.confirmed == Counter(str(e.event_id) for e in events), (
            "every row published exactly once"
        )


class InboxContract(DatabaseBase):
    async def test_the_same_event_in_two_processes_at_once_is_applied_once(
        self, db: Database, other_process_db: Database, lock_watch: LockWatch
    ) -> None:
        applied: list[str] = []
        inside, go_on = asyncio.Event(), asyncio.Event()

        async def slow_handler(event: Event, uow: Any) -> None:
            applied.append(str(event.event_id))
            inside.set()
            await go_on.wait()  # hold the transaction open while the other one tries

        handlers = {"AccountCreated": slow_handler}
        first = EventConsumer("notifications", db, handlers, default_registry())
        second = EventConsumer("notifications", other_process_db, handlers, default_registry())
        message = account_created()
        winner = asyncio.create_task(first.deliver_one(delivery(message)))
        await asyncio.wait_for(inside.wait(), 10)
        # The second waits for the first transaction (PostgreSQL: the consumers' advisory
        # lock, then the inbox key; SQLite: the write lock), then finds the event applied:
        # acknowledged, the handler never runs.
        losing = asyncio.create_task(second.deliver_one(delivery(message)))
        await eventually(lock_watch.waiting)
        go_on.set()
        loser = await losing
        assert await winner == Ack()
        assert loser == Ack()
        assert applied == [message.event_id]
        assert await count(db, inbox) == 1

    async def test_when_the_first_process_rolls_back_the_second_applies(
        self, db: Database, other_process_db: Database, lock_watch: LockWatch
    ) -> None:
        inside, go_on = asyncio.Event(), asyncio.Event()
        calls: list[str] = []

        async def failing_then_fine(event: Event, uow: Any) -> None:
            calls.append("call")
            if len(calls) == 1:
                inside.set()
                await go_on.wait()  # until the other process waits for this transaction
                raise RuntimeError("lost the connection to a friend")

        handlers = {"AccountCreated": failing_then_fine}
        first = EventConsumer("notifications", db, handlers, default_registry())
        second = EventConsumer("notifications", other_process_db, handlers, default_registry())
        message = account_created()
        failing = asyncio.create_task(first.deliver_one(delivery(message)))
        await asyncio.wait_for(inside.wait(), 10)
        waiting = asyncio.create_task(second.deliver_one(delivery(message)))
        await eventually(lock_watch.waiting)
        go_on.set()
        assert await waiting == Ack()
        assert isinstance(await failing, Retry)
        assert calls == ["call", "call"]
        assert await count(db, inbox) == 1


class DeadLetterContract(DatabaseBase):
    async def test_dead_letters_are_stored_and_replayed_after_a_fix(self, db: Database) -> None:
        broken = True
        applied: list[str] = []

        async def handler(event: Event, uow: Any) -> None:
            if broken:
                raise RuntimeError("a bug in the handler")
            applied.append(str(event.event_id))

        consumer = EventConsumer(
            "notifications", db, {"AccountCreated": handler}, default_registry(), max_deliveries=3
        )
        message = account_created()
        garbage = OutgoingMessage(str(uuid.uuid4()), "accounts", "AccountCreated", b"{oops")
        assert isinstance(await consumer.deliver_one(delivery(message, attempt=2)), Retry)
        assert await consumer.deliver_one(delivery(message, attempt=3)) == Ack()
        assert await consumer.deliver_one(delivery(garbage)) == Ack()

        letters = await deadletters.list_dead_letters(db)
        assert [(d.event_id, d.error.split(":")[0], d.attempts) for d in letters] == [
            (message.event_id, "failed", 3),
            (None, "invalid", 1),
        ]
        assert "a bug in the handler" in letters[0].error
        assert letters[0].created_at.tzinfo is not None

        broken = False
        assert await deadletters.replay(consumer, letters[0].id) == "applied"
        assert applied == [message.event_id]
        with pytest.raises(ValueError, match="already replayed"):
            await deadletters.replay(consumer, letters[0].id)
        await deadletters.discard(db, letters[1].id)
        assert await deadletters.list_dead_letters(db) == []
        async with db.reader() as session:
            statuses = (await session.scalars(select(dead_letters.c.status))).all()
        assert sorted(statuses) == ["discarded", "replayed"]

    async def test_replay_applies_once_into_the_inbox_of_the_consumer_that_gave_up(
        self, db: Database
    ) -> None:
        applied: list[Any] = []

        async def fixed_handler(event: Event, uow: Any) -> None:
            applied.append(event.event_id)

        consumer = EventConsumer(
            "notifications", db, {"AccountDeactivated": fixed_handler}, default_registry()
        )
        letter_id, event = await store_dead_letter(db, consumer="notifications-g2")

        assert await deadletters.replay(consumer, letter_id) == "applied"
        assert applied == [event.event_id]
        async with db.reader() as session:
            owners = (await session.scalars(select(inbox.c.consumer))).all()
        assert owners == ["notifications-g2"]
        letter = await deadletters.get_dead_letter(db, letter_id)
        assert letter is not None and letter.status == "replayed"
        with pytest.raises(ValueError, match="already replayed"):
            await deadletters.replay(consumer, letter_id)

    async def test_a_replay_that_fails_again_stays_pending_with_the_new_error(
        self, db: Database
    ) -> None:
        async def still_broken(event: Event, uow: Any) -> None:
            raise RuntimeError("still broken")

        consumer = EventConsumer(
            "notifications", db, {"AccountDeactivated": still_broken}, default_registry()
        )
        letter_id, _ = await store_dead_letter(db, consumer="notifications")
        with pytest.raises(RuntimeError, match="still broken"):
            await deadletters.replay(consumer, letter_id)
        letter = await deadletters.get_dead_letter(db, letter_id)
        assert letter is not None
        assert (letter.status, letter.error) == (
            "pending",
            "replay failed: RuntimeError('still broken')",
        )
        await deadletters.discard(db, letter_id)
        discarded = await deadletters.list_dead_letters(db, "discarded")
        assert [item.id for item in discarded] == [letter_id]
        assert await deadletters.list_dead_letters(db) == []

    async def test_a_resolution_with_an_error_keeps_its_status(self, db: Database) -> None:
        """Issue 13 (13b): giving an error used to drop the status (and the time)."""
        letter_id, _ = await store_dead_letter(db, consumer="notifications")
        await deadletters._resolve(db, letter_id, "discarded", error="not ours to apply")
        letter = await deadletters.get_dead_letter(db, letter_id)
        assert letter is not None
        assert (letter.status, letter.error) == ("discarded", "not ours to apply")
        assert await deadletters.list_dead_letters(db) == []


async def _true(value: bool) -> bool:
    return value


async def _none_unsent(db: Database) -> bool:
    return await unsent(db) == 0


async def _has(recorder: Recorder, event_id: str) -> bool:
    return event_id in {e for e, _ in recorder.seen}


def _arrived(recorder: Recorder, event_id: str) -> Callable[[], Awaitable[bool]]:
    return lambda: _has(recorder, event_id)
