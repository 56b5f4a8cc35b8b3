"""Auth's JSON API: people (admins) and ``/api/me``.

Unlike the other services, auth checks each token's person against its own table on every
call: a deactivated person's token stops working here at once, and a role change takes
effect at once (elsewhere both wait for the token to expire, at most
``ATES_ACCESS_TOKEN_TTL_SECONDS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import select

from ates.platform.api_errors import errors
from ates.platform.dependencies import CurrentUser, RuntimeDep
from ates.platform.params import is_uuid
from ates.platform.text import WHITESPACE
from ates.services.auth import commands, queries
from ates.services.auth.domain import (
    EMAIL_PART,
    ROLES,
    PersonConflict,
    PersonRuleError,
    check_email,
    check_full_name,
    check_password,
    check_role,
    check_username,
)
from ates.services.auth.models import Person

router = APIRouter(prefix="/api", tags=["people"], responses=errors(401))


def _rule(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    """A field validator running a domain check, in the domain's words."""

    def validate(value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check(value)
        except PersonRuleError as error:
            raise ValueError(error.message) from error

    return validate


# What the domain's checks accept, for the OpenAPI document (the checks decide).
USERNAME = {"pattern": r"^[a-z0-9][a-z0-9._-]{1,63}$"}
ROLE = {"enum": list(ROLES)}
PASSWORD = {"minLength": 8}
EMAIL = {"pattern": f"^[{WHITESPACE}]*{EMAIL_PART}@{EMAIL_PART}[{WHITESPACE}]*$"}
FULL_NAME = {"pattern": rf"^[^\x00]*[^{WHITESPACE}\x00][^\x00]*$"}

Username = Annotated[
    str, Field(max_length=64, json_schema_extra=USERNAME), AfterValidator(_rule(check_username))
]
Role = Annotated[str, Field(json_schema_extra=ROLE), AfterValidator(_rule(check_role))]
Password = Annotated[
    str, Field(max_length=1024, json_schema_extra=PASSWORD), AfterValidator(_rule(check_password))
]
Email = Annotated[
    str, Field(max_length=254, json_schema_extra=EMAIL), AfterValidator(_rule(check_email))
]
FullName = Annotated[
    str,
    Field(max_length=200, json_schema_extra=FULL_NAME),
    AfterValidator(_rule(check_full_name)),
]


class NewPerson(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    role: Role
    password: Password
    email: Email | None = None
    full_name: FullName | None = None


class PersonPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    full_name: FullName | None = None
    email: Email | None = None
    active: bool | None = None


class PersonOut(BaseModel):
    public_id: str
    username: str
    email: str
    full_name: str
    role: str
    active: bool

    @classmethod
    def of(cls, person: Person) -> PersonOut:
        return cls.model_validate(person.as_json())


def _known(public_id: str) -> str:
    """A person's id that can exist (a UUID); anything else is 404 at once."""
    if not is_uuid(public_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no person {public_id}")
    return public_id


async def _person_of_token(runtime: RuntimeDep, token: CurrentUser) -> Person:
    async with runtime.db.reader() as session:
        person: Person | None = await session.scalar(
            select(Person).where(Person.public_id == str(token.public_id))
        )
    if person is None or not person.active:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="the account of this token is unknown or deactivated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return person


Me = Annotated[Person, Depends(_person_of_token)]


async def _admin(person: Me) -> Person:
    if person.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="requires role: admin")
    return person


Admin = Annotated[Person, Depends(_admin)]


def _unprocessable(error: PersonRuleError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(error))


@router.post("/users", status_code=status.HTTP_201_CREATED, responses=errors(403, 409, 413))
async def create_user(body: NewPerson, runtime: RuntimeDep, admin: Admin) -> PersonOut:
    command = commands.CreatePerson(
        username=body.username,
        role=body.role,
        password=body.password,
        email=body.email,
        full_name=body.full_name,
    )
    try:
        async with runtime.uow() as uow:
            person = await commands.create_person(uow, command)
    except PersonRuleError as error:
        raise _unprocessable(error) from error
    except commands.PersonExists as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"username: {error}") from error
    return PersonOut.of(person)


@router.get("/users", responses=errors(403))
async def list_users(runtime: RuntimeDep, admin: Admin) -> list[PersonOut]:
    async with runtime.uow() as uow:
        people = await queries.list_people(uow)
    return [PersonOut.of(p) for p in people]


@router.get("/users/{public_id}", responses=errors(403, 404))
async def get_user(public_id: str, runtime: RuntimeDep, admin: Admin) -> PersonOut:
    try:
        async with runtime.uow() as uow:
            person = await queries.get_person(uow, _known(public_id))
    except queries.PersonNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no person {public_id}") from error
    return PersonOut.of(person)


@router.patch("/users/{public_id}", responses=errors(403, 404, 409, 413))
async def change_user(
    public_id: str, body: PersonPatch, runtime: RuntimeDep, admin: Admin
) -> PersonOut:
    command = commands.ChangePerson(
        public_id=_known(public_id),
        role=body.role,
        full_name=body.full_name,
        email=body.email,
        active=body.active,
        actor_public_id=admin.public_id,
    )
    try:
        async with runtime.uow() as uow:
            person = await commands.change_person(uow, command)
    except queries.PersonNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no person {public_id}") from error
    except PersonRuleError as error:
        raise _unprocessable(error) from error
    except PersonConflict as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from error
    return PersonOut.of(person)


@router.get("/me")
async def me(person: Me) -> PersonOut:
    return PersonOut.of(person)
