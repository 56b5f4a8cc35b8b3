"""The sender job: turns pending notices into messages, through the notifier port.

A notice waits until the person it goes to (and, for an assignment, the task) is known
here, so a ``TaskAssigned`` that overtook ``AccountCreated`` still names both. After
``GRACE`` it is sent with what we have (ids instead of names) rather than never.

Sending talks to the outside world (email, Slack, SMS gateways), which may be slow, so it
never happens inside a database transaction. A round has three steps:

1. **claim**, one short transaction: due notices are marked ``claimed_by`` this round
   with ``claimed_at`` — the claim is a lease of ``LEASE``; a conditional UPDATE (plus
   ``SKIP LOCKED`` on PostgreSQL) makes two senders never hold the same notice at once;
2. **send**, outside any transaction;
3. **mark**, a second short transaction: sent notices get ``sent_at``; a notice whose
   sending raised is released with ``last_error`` and ``next_try_at`` (backing off by
   ``attempts``, and retried for ever: a notice is never dropped).

The guarantee is **at least once**: a process that dies between send and mark (or whose
lease ran out mid-send) leaves the claim to expire, and the notice is sent again by the
next round after the lease. A notice is never lost; in that rare case it may be sent
twice, and a failure on the second of three channels resends the first one too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog
from sqlalchemy import and_, or_, select, update

from ates.platform.runtime import Runtime
from ates.platform.uow import UnitOfWork
from ates.services.notifications.domain import (
    PAYOUT,
    Message,
    Recipient,
    TaskRef,
    assignment_messages,
    payout_messages,
)
from ates.services.notifications.models import Notice, Person, TaskCopy
from ates.services.notifications.notifier import Notifier, StdoutNotifier

log = structlog.get_logger(__name__)

GRACE = timedelta(minutes=1)
BATCH = 200
LEASE = timedelta(minutes=2)  # a round that holds its claim longer is presumed dead
RETRY_FIRST = timedelta(seconds=10)
RETRY_MAX = timedelta(hours=1)


def messages_for(
    notice: Notice,
    person: Person | None,
    task: TaskCopy | None,
    *,
    show_day: Callable[[date], str] = date.isoformat,
) -> list[Message]:
    recipient = Recipient(
        public_id=notice.person_public_id,
        full_name=person.full_name if person else None,
        username=person.username if person else None,
        email=person.email if person else None,
    )
    if notice.kind == PAYOUT:
        assert notice.amount_cents is not None and notice.business_date is not None
        return payout_messages(
            recipient, notice.amount_cents, notice.business_date, show_day=show_day
        )
    assert notice.task_public_id is not None
    ref = TaskRef(
        notice.task_public_id, task.title if task else None, task.jira_id if task else None
    )
    return assignment_messages(recipient, ref, notice.reason or "created")


@dataclass(frozen=True, slots=True)
class Claimed:
    """A notice this round holds, with the messages it becomes."""

    notice_id: int
    attempt: int
    messages: list[Message]


def retry_delay(attempt: int) -> timedelta:
    """How long a notice whose ``attempt``-th sending failed waits: doubling, capped."""
    doubling: int = 2 ** max(attempt - 1, 0)
    return min(RETRY_FIRST * doubling, RETRY_MAX)


def new_owner() -> str:
    """Who holds a claim: this host and process (for a reader), unique per round."""
    return f"{socket.gethostname()[:32]}/{os.getpid()}/{uuid.uuid4().hex[:12]}"


async def claim(
    new_uow: Callable[[], UnitOfWork],
    owner: str,
    *,
    now: datetime,
    grace: timedelta = GRACE,
    lease: timedelta = LEASE,
    limit: int = BATCH,
) -> list[Claimed]:
    """Claim up to ``limit`` due notices for ``owner`` in one short transaction."""
    known = and_(
        Person.id.is_not(None),
        or_(Notice.task_public_id.is_(None), TaskCopy.id.is_not(None)),
    )
    free = or_(Notice.claimed_at.is_(None), Notice.claimed_at <= now - lease)
    due = (
        select(Notice.id)
        .outerjoin(Person, Person.public_id == Notice.person_public_id)
        .outerjoin(TaskCopy, TaskCopy.public_id == Notice.task_public_id)
        .where(
            Notice.sent_at.is_(None),
            free,
            or_(Notice.next_try_at.is_(None), Notice.next_try_at <= now),
            or_(known, Notice.created_at <= now - grace),
        )
        .order_by(Notice.id)
        .limit(limit)
        .with_for_update(of=Notice, skip_locked=True)
    )
    # The UPDATE checks again that each notice is unsent and free: of two senders that
    # chose the same notices, the second to write finds them taken and claims none.
    take = (
        update(Notice)
        .where(Notice.id.in_(due.scalar_subquery()), Notice.sent_at.is_(None), free)
        .values(claimed_at=now, claimed_by=owner, attempts=Notice.attempts + 1)
        .returning(Notice.id, Notice.attempts)
        .execution_options(synchronize_session=False)
    )
    async with new_uow() as uow:
        attempts = {row[0]: row[1] for row in await uow.session.execute(take)}
        if not attempts:
            await uow.commit()
            return []
        rows = (
            await uow.session.execute(
                select(Notice, Person, TaskCopy)
                .outerjoin(Person, Person.public_id == Notice.person_public_id)
                .outerjoin(TaskCopy, TaskCopy.public_id == Notice.task_public_id)
                .where(Notice.id.in_(list(attempts)))
                .order_by(Notice.id)
            )
        ).all()
        claimed = [
            Claimed(notice.id, attempts[notice.id], messages_for(notice, person, task))
            for notice, person, task in rows
        ]
        await uow.commit()
    return claimed


async def deliver(notifier: Notifier, claimed: Sequence[Claimed]) -> dict[int, str | None]:
    """Send each claimed notice's messages (no transaction open): notice id -> None when
    sent, or the error that stopped it."""
    outcome: dict[int, str | None] = {}
    for notice in claimed:
        try:
            for message in notice.messages:
                await notifier.send(message)
        except Exception as error:  # a broken gateway fails this notice, not the round
            log.warning(
                "notifications.send_failed", notice_id=notice.notice_id, attempt=notice.attempt
            )
            outcome[notice.notice_id] = f"{type(error).__name__}: {error}"[:500]
        else:
            outcome[notice.notice_id] = None
    return outcome


async def mark(
    new_uow: Callable[[], UnitOfWork],
    owner: str,
    claimed: Sequence[Claimed],
    outcome: dict[int, str | None],
    *,
    now: datetime,
) -> None:
    """Record a round's outcome in one short transaction."""
    sent = [notice_id for notice_id, error in outcome.items() if error is None]
    async with new_uow() as uow:
        if sent:
            # Sent is a fact even if our lease ran out meanwhile: record it.
            await uow.session.execute(
                update(Notice)
                .where(Notice.id.in_(sent), Notice.sent_at.is_(None))
                .values(sent_at=now, claimed_at=None, claimed_by=None, last_error=None)
                .execution_options(synchronize_session=False)
            )
        for notice in claimed:
            error = outcome.get(notice.notice_id)
            if error is None:
                continue
            # Released for a retry, unless another sender took the notice over meanwhile.
            await uow.session.execute(
                update(Notice)
                .where(Notice.id == notice.notice_id, Notice.claimed_by == owner)
                .values(
                    claimed_at=None,
                    claimed_by=None,
                    last_error=error,
                    next_try_at=now + retry_delay(notice.attempt),
                )
                .execution_options(synchronize_session=False)
            )
        await uow.commit()


async def send_pending(
    new_uow: Callable[[], UnitOfWork],
    notifier: Notifier,
    *,
    now: datetime | None = None,
    grace: timedelta = GRACE,
    lease: timedelta = LEASE,
    limit: int = BATCH,
) -> int:
    """One round: claim up to ``limit`` due notices, send them, mark them; returns how
    many were sent."""
    owner = new_owner()
    claimed = await claim(
        new_uow, owner, now=now or datetime.now(UTC), grace=grace, lease=lease, limit=limit
    )
    if not claimed:
        return 0
    outcome = await deliver(notifier, claimed)
    await mark(new_uow, owner, claimed, outcome, now=now or datetime.now(UTC))
    return sum(1 for error in outcome.values() if error is None)


async def run_sender(runtime: Runtime, notifier: Notifier | None = None) -> None:
    """Background job of the service: send forever (until cancelled), to stdout unless
    given another notifier."""
    notifier = notifier or StdoutNotifier()
    while True:
        try:
            sent = await send_pending(runtime.uow, notifier)
        except Exception:
            log.exception("notifications.send_failed")
            sent = 0
        if sent == 0:
            await asyncio.sleep(runtime.settings.outbox_poll_seconds)
