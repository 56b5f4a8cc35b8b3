"""The sender's claim, send, mark: nothing is sent inside a transaction, a round that dies
mid-send is retried after its lease (at least once, never lost), a failing gateway is
retried later, and two senders never send one notice at once — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from ates.platform import migrations
from ates.platform.db import Database
from ates.platform.runtime import Runtime, build_runtime
from ates.services.notifications.domain import Message
from ates.services.notifications.models import Notice
from ates.services.notifications.notifier import RecordingNotifier
from ates.services.notifications.sender import LEASE, retry_delay, send_pending
from ates.services.registry import spec
from tests.integration.notifications.test_notices import deliver, event, task_assigned
from tests.integration.tasks.helpers import person_data
from tests.support import TokenFactory, eventually, make_settings

pytestmark = pytest.mark.integration


class Crash(BaseException):
    """The process dying mid-send (not an error the sender handles)."""


class CrashingNotifier:
    async def send(self, message: Message) -> None:
        raise Crash


class BrokenGateway:
    async def send(self, message: Message) -> None:
        raise ConnectionError("SMS gateway down")


class GatedNotifier(RecordingNotifier):
    """Records, then waits at the gate: a slow gateway a test holds open."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send(self, message: Message) -> None:
        await super().send(message)
        await self.gate.wait()


class YieldingNotifier:
    """Hands control to the other sender at every message, to interleave them."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def send(self, message: Message) -> None:
        await asyncio.sleep(0)
        self.log.append(message.line())


async def notices_for_polly(runtime: Runtime, count: int) -> datetime:
    """``count`` notices for Polly; returns a moment past the grace period of all of them
    (taken after they were written: a module-level constant is stale in a long run)."""
    polly = person_data("worker", "Polly Parrot")
    await deliver(runtime, event("AccountCreated", polly))
    for number in range(count):
        # the task stays unknown: sent after the grace period, naming its id
        task = f"00000000-0000-4000-8000-{number:012d}"
        await deliver(runtime, task_assigned(task, polly["public_id"]))
    return datetime.now(UTC) + timedelta(minutes=5)


async def unsent(runtime: Runtime) -> int:
    async with runtime.db.reader() as session:
        query = select(func.count()).select_from(Notice).where(Notice.sent_at.is_(None))
        return int(await session.scalar(query) or 0)


async def test_a_crash_between_claim_and_mark_is_sent_again_after_the_lease(
    runtime: Runtime,
) -> None:
    later = await notices_for_polly(runtime, 1)
    with pytest.raises(Crash):
        await send_pending(runtime.uow, CrashingNotifier(), now=later)

    notifier = RecordingNotifier()
    # the dead round's claim holds until its lease runs out ...
    assert await send_pending(runtime.uow, notifier, now=later + LEASE / 2) == 0
    assert await unsent(runtime) == 1  # ... and the notice is not lost
    assert await send_pending(runtime.uow, notifier, now=later + LEASE) == 1
    assert len(notifier.sent) == 3  # email, Slack and SMS, once
    assert await unsent(runtime) == 0
    assert await send_pending(runtime.uow, notifier, now=later + 3 * LEASE) == 0


async def test_a_failed_sending_is_retried_later_with_its_reason(runtime: Runtime) -> None:
    later = await notices_for_polly(runtime, 1)
    assert await send_pending(runtime.uow, BrokenGateway(), now=later) == 0
    async with runtime.db.reader() as session:
        notice = (await session.scalars(select(Notice))).one()
    assert notice.attempts == 1 and notice.claimed_by is None
    assert notice.last_error == "ConnectionError: SMS gateway down"
    assert notice.next_try_at == later + retry_delay(1)

    notifier = RecordingNotifier()
    assert await send_pending(runtime.uow, notifier, now=later + retry_delay(1) / 2) == 0
    assert await send_pending(runtime.uow, notifier, now=later + retry_delay(1)) == 1
    assert len(notifier.sent) == 3
    assert retry_delay(2) == 2 * retry_delay(1)


async def test_nothing_is_sent_inside_a_transaction(runtime: Runtime) -> None:
    """While a gateway hangs, the database is free: another round runs (claiming nothing
    held) and the consumer still writes."""
    later = await notices_for_polly(runtime, 2)
    slow = GatedNotifier()
    first = asyncio.create_task(send_pending(runtime.uow, slow, now=later))
    await eventually(lambda: _true(slow.sent))

    other = RecordingNotifier()
    assert await asyncio.wait_for(send_pending(runtime.uow, other, now=later), 10) == 0
    await asyncio.wait_for(notices_for_polly(runtime, 1), 10)  # the consumer writes
    assert other.sent == []

    slow.gate.set()
    assert await first == 2
    assert await send_pending(runtime.uow, other, now=later) == 1  # the one written meanwhile
    assert len(slow.sent) == 6 and len(other.sent) == 3


async def _true(value: object) -> bool:
    return bool(value)


async def two_senders_send_each_notice_once(first: Runtime, second: Runtime) -> None:
    later = await notices_for_polly(first, 40)
    log: list[str] = []

    async def drain(runtime: Runtime) -> None:
        while await send_pending(runtime.uow, YieldingNotifier(log), now=later, limit=5):
            pass

    await asyncio.gather(drain(first), drain(second))
    assert len(log) == 40 * 3
    assert Counter(log).most_common(1)[0][1] == 1  # no message twice
    assert await unsent(first) == 0


async def test_two_senders_send_each_notice_once_on_sqlite(
    runtime: Runtime, tmp_path: Path, tokens: TokenFactory
) -> None:
    # a second process: the same SQLite file through an engine of its own
    settings = make_settings(tmp_path / "data", None)
    second = build_runtime(spec("notifications"), settings, verifier=tokens.verifier())
    try:
        await two_senders_send_each_notice_once(runtime, second)
    finally:
        await second.db.dispose()


@pytest.fixture
async def on_postgres(
    postgres_url: str, tmp_path: Path, tokens: TokenFactory
) -> AsyncIterator[tuple[Runtime, Runtime]]:
    settings = make_settings(tmp_path / "data", None, notifications_database_url=postgres_url)
    first = build_runtime(spec("notifications"), settings, verifier=tokens.verifier())
    second = build_runtime(spec("notifications"), settings, verifier=tokens.verifier())
    await migrations.upgrade("notifications", first.db)
    try:
        yield first, second
    finally:
        await first.db.dispose()
        await second.db.dispose()


@pytest.mark.postgres
async def test_two_senders_send_each_notice_once_on_postgres(
    on_postgres: tuple[Runtime, Runtime],
) -> None:
    await two_senders_send_each_notice_once(*on_postgres)


@pytest.mark.postgres
async def test_a_crash_is_sent_again_after_the_lease_on_postgres(
    on_postgres: tuple[Runtime, Runtime],
) -> None:
    first, second = on_postgres
    later = await notices_for_polly(first, 1)
    with pytest.raises(Crash):
        await send_pending(first.uow, CrashingNotifier(), now=later)
    notifier = RecordingNotifier()
    assert await send_pending(second.uow, notifier, now=later + LEASE / 2) == 0
    assert await send_pending(second.uow, notifier, now=later + LEASE) == 1
    assert await unsent(first) == 0


async def test_the_claim_columns_migrate_down_and_up(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}")
    try:
        await migrations.upgrade("notifications", db)
        await migrations.downgrade("notifications", db, "0003")
        async with db.engine.connect() as connection:
            columns = (await connection.execute(text("PRAGMA table_info(notices)"))).all()
            assert "claimed_at" not in {column[1] for column in columns}
            index = await connection.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_notices_unsent'")
            )
            assert "sent_at IS NULL" in index  # the partial index stays
        await migrations.upgrade("notifications", db)
        async with db.engine.connect() as connection:
            columns = (await connection.execute(text("PRAGMA table_info(notices)"))).all()
            assert {"claimed_at", "claimed_by", "attempts"} <= {column[1] for column in columns}
    finally:
        await db.dispose()
