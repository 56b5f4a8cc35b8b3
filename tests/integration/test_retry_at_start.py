"""Dead letters of transient failures are retried when their service starts (bundled
NATS, the service's SQLite database, the platform's consumer and start-up): applied once
through the inbox, at most ``ATES_DEAD_LETTER_RETRIES_AT_START`` times, the outcome on
the letter; invalid and rejected letters wait for a person."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from ates.config import Settings
from ates.platform import deadletters, migrations
from ates.platform.broker import OutgoingMessage
from ates.platform.db import Database
from ates.platform.events import Event
from ates.platform.tables import dead_letters, inbox
from ates.testing.events import account_created
from tests.support import (
    FailingHandler,
    TokenFactory,
    eventually,
    failing_service,
    make_settings,
    publish,
)

pytestmark = pytest.mark.integration

REJECTED_NAME = FailingHandler.REJECTED_NAME


@pytest.fixture
def settings(tmp_path: Path, nats_url: str) -> Settings:
    return make_settings(
        tmp_path / "data", nats_url, max_deliveries=2, dead_letter_retries_at_start=2
    )


async def letters(db: Database) -> dict[str, deadletters.DeadLetter]:
    """Every letter, by the username of its person ("?" if the message did not parse)."""
    found = {}
    for letter in await deadletters.list_dead_letters(db, status=None):
        try:
            name = Event.from_json(letter.payload).data["username"]
        except Exception:
            name = "?"
        found[name] = letter
    return found


async def dead_letter_three_kinds(
    settings: Settings, tokens: TokenFactory, handler: FailingHandler
) -> OutgoingMessage:
    """A first run: a transient failure (given up after two deliveries), a rejected event
    and a message that is no event at all, all in the dead letters."""
    transient = account_created(username="transient-one")
    async with failing_service(settings, tokens, handler) as service:
        await publish(
            settings,
            transient,
            account_created(username=REJECTED_NAME),
            OutgoingMessage(str(uuid.uuid4()), "accounts", "AccountCreated", b"{not json"),
        )

        async def all_three() -> dict[str, deadletters.DeadLetter]:
            found = await letters(service.db)
            return found if len(found) == 3 else {}

        found = await eventually(all_three)
    assert {name: letter.kind for name, letter in found.items()} == {
        "transient-one": "failed",
        REJECTED_NAME: "rejected",
        "?": "invalid",
    }
    assert found["transient-one"].attempts == 2
    return transient


async def test_a_transient_failure_is_retried_at_start_and_applied_once(
    settings: Settings, tokens: TokenFactory
) -> None:
    handler = FailingHandler(ConnectionError("the database went away"))
    transient = await dead_letter_three_kinds(settings, tokens, handler)
    assert handler.applied == []

    handler.fixed = True  # the database is back, or the bug was fixed
    async with failing_service(settings, tokens, handler) as service:

        async def replayed() -> deadletters.DeadLetter | None:
            letter = (await letters(service.db))["transient-one"]
            return letter if letter.status == "replayed" else None

        letter = await eventually(replayed)
        assert letter.retries == 1
        assert letter.outcome == "retried at start (1 of 2): applied"
        others = await letters(service.db)
        for name in (REJECTED_NAME, "?"):  # no retry can help those: left to a person
            assert (others[name].status, others[name].retries) == ("pending", 0)
        # What the next start would find: nothing left to retry.
        consumer = service.runtime.consumer()
        assert await deadletters.retry_transient(consumer, "notifications", 2) == {}
        async with service.db.reader() as session:
            rows = await session.scalar(
                select(func.count())
                .select_from(inbox)
                .where(inbox.c.event_id == transient.event_id)
            )
        assert rows == 1
    assert handler.applied == [transient.event_id]


async def test_retries_stop_at_the_limit_with_the_last_outcome(
    settings: Settings, tokens: TokenFactory
) -> None:
    """The retries of successive starts, run one after the other (the start-up job runs
    ``retry_transient`` once): the handler stays broken, the limit is 2."""
    handler = FailingHandler(ConnectionError("the database went away"))
    await dead_letter_three_kinds(settings, tokens, handler)
    no_start_job = settings.model_copy(update={"dead_letter_retries_at_start": 0})
    async with failing_service(no_start_job, tokens, handler) as service:
        # Only letters written before a start are retried at that start.
        consumer = service.runtime.consumer()
        assert (
            await deadletters.retry_transient(
                consumer, "notifications", 2, before=datetime(2000, 1, 1, tzinfo=UTC)
            )
            == {}
        )
        outcomes = [
            await deadletters.retry_transient(consumer, "notifications", 2) for _ in range(3)
        ]
        letter = (await letters(service.db))["transient-one"]
    assert [list(found.values()) for found in outcomes] == [["failed"], ["failed"], []]
    assert (letter.status, letter.retries) == ("pending", 2)
    assert letter.outcome == (
        "retried at start (2 of 2): failed: ConnectionError('the database went away')"
    )
    assert handler.applied == []


async def test_letters_from_before_the_retries_are_classified_by_their_reason(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await migrations.upgrade("notifications", db, "0002")
        reasons = [
            "failed: RuntimeError('x')",
            "rejected: no",
            "invalid: not JSON",
            "replay failed: x",
        ]
        async with db.sessions() as session, session.begin():
            for reason in reasons:
                await session.execute(
                    insert(dead_letters).values(
                        consumer="notifications",
                        subject="accounts.AccountCreated",
                        payload="{}",
                        error=reason,
                        attempts=1,
                        created_at=datetime.now(UTC),
                    )
                )
        await migrations.upgrade("notifications", db)
        found: list[Any] = await deadletters.list_dead_letters(db)
        assert [(letter.kind, letter.retries) for letter in found] == [
            ("failed", 0),
            ("rejected", 0),
            ("invalid", 0),
            ("failed", 0),
        ]
    finally:
        await db.dispose()
