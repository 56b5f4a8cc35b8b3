"""The events the tasks service consumes: auth's account events, which keep its copy of people.

Events may come late, twice or out of order. Each fact (profile, role, active) is set
only by an event newer than the one that set it last (the platform's one rule,
``ates.platform.events.ordering``: by event time, then event id); a person
first heard of through a role change or deactivation is kept with what we know.
A duplicate is stopped earlier, by the inbox.
"""

from __future__ import annotations

from sqlalchemy import select

from ates.platform.events import Event
from ates.platform.events.ordering import event_stamp, is_newer
from ates.platform.uow import UnitOfWork
from ates.schemas.accounts import (
    AccountCreated,
    AccountDeactivated,
    AccountRoleChanged,
    AccountUpdated,
)
from ates.services.tasks.models import Person


async def _person(uow: UnitOfWork, public_id: str) -> Person:
    person = await uow.session.scalar(select(Person).where(Person.public_id == public_id))
    if person is None:
        person = Person(public_id=public_id, active=True)
        uow.session.add(person)
    return person


def _set_profile(person: Person, profile: AccountCreated | AccountUpdated, at: str) -> None:
    if is_newer(at, person.profile_stamp):
        person.username = profile.username
        person.full_name = profile.full_name
        person.email = profile.email
        person.profile_stamp = at


def _set_role(person: Person, role: str, at: str) -> None:
    if is_newer(at, person.role_stamp):
        person.role = role
        person.role_stamp = at


def _set_active(person: Person, active: bool, at: str) -> None:
    if is_newer(at, person.active_stamp):
        person.active = active
        person.active_stamp = at


async def on_account_created(event: Event, uow: UnitOfWork) -> None:
    created, at = AccountCreated.of(event), event_stamp(event)
    person = await _person(uow, created.public_id)
    _set_profile(person, created, at)
    _set_role(person, created.role, at)
    _set_active(person, True, at)


async def on_account_updated(event: Event, uow: UnitOfWork) -> None:
    updated, at = AccountUpdated.of(event), event_stamp(event)
    person = await _person(uow, updated.public_id)
    _set_profile(person, updated, at)
    _set_role(person, updated.role, at)
    _set_active(person, updated.active, at)


async def on_account_role_changed(event: Event, uow: UnitOfWork) -> None:
    changed = AccountRoleChanged.of(event)
    person = await _person(uow, changed.public_id)
    _set_role(person, changed.new_role, event_stamp(event))


async def on_account_deactivated(event: Event, uow: UnitOfWork) -> None:
    person = await _person(uow, AccountDeactivated.of(event).public_id)
    _set_active(person, False, event_stamp(event))


HANDLERS = {
    "AccountCreated": on_account_created,
    "AccountUpdated": on_account_updated,
    "AccountRoleChanged": on_account_role_changed,
    "AccountDeactivated": on_account_deactivated,
}
