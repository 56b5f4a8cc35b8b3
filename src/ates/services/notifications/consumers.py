"""Event handlers of the notifications service.

Account and task events keep the copies that name people and tasks; ``TaskAssigned``
and ``PayoutMade`` become notices, sent by the ``sender`` job once the person (and the
task) are known. Nothing is printed inside the consuming transaction, so a rolled-back
or redelivered event never produces a message of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Table, insert, select

from ates.platform.consumer import Batched, Handler
from ates.platform.events import Event
from ates.platform.events.ordering import event_stamp, is_newer
from ates.platform.sql import insert_for
from ates.platform.uow import UnitOfWork
from ates.schemas import payload_of
from ates.schemas.accounts import AccountCreated, AccountUpdated
from ates.schemas.billing import PayoutMade
from ates.schemas.tasks import TaskAssigned, TaskCreated
from ates.services.notifications.domain import PAYOUT, TASK_ASSIGNED
from ates.services.notifications.models import Notice, Person, TaskCopy


async def _set_profile(uow: UnitOfWork, profile: AccountCreated | AccountUpdated, at: str) -> None:
    person = await uow.session.scalar(select(Person).where(Person.public_id == profile.public_id))
    if person is None:
        person = Person(public_id=profile.public_id)
        uow.session.add(person)
    if is_newer(at, person.profile_stamp):
        person.username = profile.username
        person.full_name = profile.full_name
        person.email = profile.email
        person.profile_stamp = at


async def on_account_created(event: Event, uow: UnitOfWork) -> None:
    await _set_profile(uow, AccountCreated.of(event), event_stamp(event))


async def on_account_updated(event: Event, uow: UnitOfWork) -> None:
    await _set_profile(uow, AccountUpdated.of(event), event_stamp(event))


async def record(events: Sequence[Event], uow: UnitOfWork) -> None:
    """A run of task and payout events: the task copies (the latest ``TaskCreated`` of a
    task wins, as one by one) and the notices, each kind written in one statement."""
    copies: dict[str, dict[str, Any]] = {}
    notices: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    for event in events:
        match payload_of(event):
            case TaskCreated() as created:  # v2 whatever the producer sent: v1 is upcast
                copies[created.public_id] = {
                    "public_id": created.public_id,
                    "title": created.title,
                    "jira_id": created.jira_id,
                }
            case TaskAssigned() as assigned:
                notices.append(
                    _notice(
                        kind=TASK_ASSIGNED,
                        person_public_id=assigned.assignee_public_id,
                        task_public_id=assigned.task_public_id,
                        reason=assigned.reason,
                        created_at=now,
                    )
                )
            case PayoutMade() as payout:
                notices.append(
                    _notice(
                        kind=PAYOUT,
                        person_public_id=payout.owner_public_id,
                        amount_cents=payout.amount_cents,
                        business_date=date.fromisoformat(payout.business_date),
                        created_at=now,
                    )
                )
    connection = await uow.session.connection()
    if copies:
        await connection.execute(_copy_task(connection.dialect.name), list(copies.values()))
    if notices:
        await connection.execute(_INSERT_NOTICE, notices)


@cache
def _copy_task(dialect: str) -> Any:
    """The upsert of a task's copy, built once per database kind."""
    upsert = insert_for(dialect)(_tasks)
    return upsert.on_conflict_do_update(
        index_elements=["public_id"],
        set_={"title": upsert.excluded.title, "jira_id": upsert.excluded.jira_id},
    )


def _notice(**values: Any) -> dict[str, Any]:
    return dict.fromkeys(_NOTICE_FIELDS) | values


_tasks = Table("tasks", TaskCopy.metadata)
_notices = Table("notices", Notice.metadata)
_INSERT_NOTICE = insert(_notices)
# every column a new notice sets (None unless given); the rest keep their defaults
_NOTICE_FIELDS = [c.name for c in _notices.c if c.name != "id" and c.server_default is None]
_RECORD = Batched(record)


HANDLERS: dict[str, Handler] = {
    "AccountCreated": on_account_created,
    "AccountUpdated": on_account_updated,
    "TaskCreated": _RECORD,
    "TaskAssigned": _RECORD,
    "PayoutMade": _RECORD,
}
