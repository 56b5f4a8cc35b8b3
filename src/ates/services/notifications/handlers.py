"""Event handlers of the notifications service.

Account and task events keep the copies that name people and tasks; ``TaskAssigned``
and ``PayoutMade`` become notices, sent by the ``sender`` job once the person (and the
task) are known. Nothing is printed inside the consuming transaction, so a rolled-back
or redelivered event never produces a message of its own.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from ates.platform.events import Event
from ates.platform.events.ordering import is_newer
from ates.platform.uow import UnitOfWork
from ates.services.notifications.domain import PAYOUT, TASK_ASSIGNED
from ates.services.notifications.models import Notice, Person, TaskCopy


async def _set_profile(uow: UnitOfWork, data: dict[str, Any], at: datetime) -> None:
    person = await uow.session.scalar(select(Person).where(Person.public_id == data["public_id"]))
    if person is None:
        person = Person(public_id=data["public_id"])
        uow.session.add(person)
    if is_newer(at, person.profile_at):
        person.username = data["username"]
        person.full_name = data["full_name"]
        person.email = data["email"]
        person.profile_at = at


async def on_account_created(event: Event, uow: UnitOfWork) -> None:
    await _set_profile(uow, event.data, event.event_time)


async def on_account_updated(event: Event, uow: UnitOfWork) -> None:
    await _set_profile(uow, event.data, event.event_time)


async def on_task_created(event: Event, uow: UnitOfWork) -> None:
    """``event`` is v2 whatever the producer sent: the consumer upcasts v1 on arrival."""
    data = event.data
    task = await uow.session.scalar(select(TaskCopy).where(TaskCopy.public_id == data["public_id"]))
    if task is None:
        task = TaskCopy(public_id=data["public_id"])
        uow.session.add(task)
    task.title = data["title"]
    task.jira_id = data["jira_id"]


async def on_task_assigned(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    uow.session.add(
        Notice(
            kind=TASK_ASSIGNED,
            person_public_id=data["assignee_public_id"],
            task_public_id=data["task_public_id"],
            reason=data["reason"],
            created_at=datetime.now(UTC),
        )
    )


async def on_payout_made(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    uow.session.add(
        Notice(
            kind=PAYOUT,
            person_public_id=data["owner_public_id"],
            amount_cents=data["amount_cents"],
            business_date=date.fromisoformat(data["business_date"]),
            created_at=datetime.now(UTC),
        )
    )


HANDLERS = {
    "AccountCreated": on_account_created,
    "AccountUpdated": on_account_updated,
    "TaskCreated": on_task_created,
    "TaskAssigned": on_task_assigned,
    "PayoutMade": on_payout_made,
}
