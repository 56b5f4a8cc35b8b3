"""The sender job: turns pending notices into messages, through the notifier port.

A notice waits until the person it goes to (and, for an assignment, the task) is known
here, so a ``TaskAssigned`` that overtook ``AccountCreated`` still names both. After
``GRACE`` it is sent with what we have (ids instead of names) rather than never.
Delivery is at least once: a notice is marked sent in the transaction that sent it,
and on PostgreSQL ``SKIP LOCKED`` lets several processes share the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import structlog
from sqlalchemy import and_, or_, select

from ates.platform.service import Runtime
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


async def send_pending(
    new_uow: Callable[[], UnitOfWork],
    notifier: Notifier,
    *,
    now: datetime | None = None,
    grace: timedelta = GRACE,
    limit: int = BATCH,
) -> int:
    """Send up to ``limit`` notices that are ready (or waited long enough); returns how
    many were sent."""
    now = now or datetime.now(UTC)
    known = and_(
        Person.id.is_not(None),
        or_(Notice.task_public_id.is_(None), TaskCopy.id.is_not(None)),
    )
    query = (
        select(Notice, Person, TaskCopy)
        .outerjoin(Person, Person.public_id == Notice.person_public_id)
        .outerjoin(TaskCopy, TaskCopy.public_id == Notice.task_public_id)
        .where(Notice.sent_at.is_(None), or_(known, Notice.created_at <= now - grace))
        .order_by(Notice.id)
        .limit(limit)
        .with_for_update(of=Notice, skip_locked=True)
    )
    async with new_uow() as uow:
        rows = (await uow.session.execute(query)).all()
        for notice, person, task in rows:
            for message in messages_for(notice, person, task):
                await notifier.send(message)
            notice.sent_at = now
        await uow.commit()
    return len(rows)


async def run_sender(runtime: Runtime) -> None:
    """Background job of the service: send forever (until cancelled)."""
    stdout = StdoutNotifier()
    while True:
        # looked up each round: a process (or a test) may plug in another adapter
        notifier: Notifier = runtime.extras.get("notifier") or stdout
        try:
            sent = await send_pending(runtime.uow, notifier)
        except Exception:
            log.exception("notifications.send_failed")
            sent = 0
        if sent == 0:
            await asyncio.sleep(runtime.settings.outbox_poll_seconds)
