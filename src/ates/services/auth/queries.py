"""Reads of the auth service: people, by id or username, or all of them."""

from __future__ import annotations

from sqlalchemy import select

from ates.platform.uow import UnitOfWork
from ates.services.auth.models import Person


class PersonNotFound(LookupError):
    pass


async def list_people(uow: UnitOfWork) -> list[Person]:
    return list((await uow.session.scalars(select(Person).order_by(Person.username))).all())


async def get_person(uow: UnitOfWork, public_id: str) -> Person:
    person = await uow.session.scalar(select(Person).where(Person.public_id == public_id))
    if person is None:
        raise PersonNotFound(f"no person {public_id}")
    return person


async def find_person(uow: UnitOfWork, username: str) -> Person | None:
    return await uow.session.scalar(select(Person).where(Person.username == username))
