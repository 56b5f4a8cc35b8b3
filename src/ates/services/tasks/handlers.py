"""Event handlers and use cases of the tasks service."""

from __future__ import annotations

from sqlalchemy import select

from ates.platform.events import Event
from ates.platform.uow import UnitOfWork
from ates.services.tasks.models import Person


async def on_account_created(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    person = await uow.session.scalar(select(Person).where(Person.public_id == data["public_id"]))
    if person is None:
        person = Person(public_id=data["public_id"], active=True)
        uow.session.add(person)
    person.username = data["username"]
    person.full_name = data["full_name"]
    if person.role is None:  # a later role change may have arrived first
        person.role = data["role"]


HANDLERS = {
    "AccountCreated": on_account_created,
}
