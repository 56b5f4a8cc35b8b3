"""Use cases of the auth service: plain functions taking a unit of work."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ates.platform.uow import UnitOfWork
from ates.services.auth import domain
from ates.services.auth.models import Person
from ates.services.auth.passwords import hash_password


class PersonExists(Exception):
    pass


@dataclass(frozen=True)
class CreatePerson:
    username: str
    role: str
    password: str
    email: str | None = None
    full_name: str | None = None


async def create_person(uow: UnitOfWork, command: CreatePerson) -> Person:
    username = domain.check_username(command.username)
    role = domain.check_role(command.role)
    domain.check_password(command.password)
    session = uow.session
    if await session.scalar(select(Person.id).where(Person.username == username)):
        raise PersonExists(f"username {username!r} is taken")
    person = Person(
        username=username,
        email=command.email or domain.default_email(username),
        full_name=command.full_name or username.title(),
        role=role,
        active=True,
        password_hash=hash_password(command.password),
    )
    session.add(person)
    await session.flush()
    await uow.emit(
        "AccountCreated",
        {
            "public_id": person.public_id,
            "username": person.username,
            "email": person.email,
            "full_name": person.full_name,
            "role": person.role,
        },
    )
    await uow.commit()
    return person


async def list_people(uow: UnitOfWork) -> list[Person]:
    return list((await uow.session.scalars(select(Person).order_by(Person.username))).all())
