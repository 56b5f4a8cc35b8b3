"""Auth's JSON API: people (admins) and ``/api/me``.

Unlike the other services, auth checks each token's person against its own table on every
call: a deactivated person's token stops working here at once, and a role change takes
effect at once (elsewhere both wait for the token to expire, at most
``ATES_ACCESS_TOKEN_TTL_SECONDS``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from ates.platform.security import CurrentUser
from ates.services.auth import handlers
from ates.services.auth.domain import PersonConflict, PersonRuleError
from ates.services.auth.models import Person

router = APIRouter(prefix="/api", tags=["people"])


class NewPerson(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=64)
    role: str
    password: str = Field(max_length=1024)
    email: str | None = Field(default=None, max_length=254)
    full_name: str | None = Field(default=None, max_length=200)


class PersonPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str | None = None
    full_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    active: bool | None = None


async def _person_of_token(request: Request, token: CurrentUser) -> Person:
    async with request.app.state.runtime.db.reader() as session:
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


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(body: NewPerson, request: Request, admin: Admin) -> dict[str, Any]:
    command = handlers.CreatePerson(
        username=body.username,
        role=body.role,
        password=body.password,
        email=body.email,
        full_name=body.full_name,
    )
    try:
        async with request.app.state.runtime.uow() as uow:
            person = await handlers.create_person(uow, command)
    except PersonRuleError as error:
        raise _unprocessable(error)
    except handlers.PersonExists as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"username: {error}")
    return person.as_json()


@router.get("/users")
async def list_users(request: Request, admin: Admin) -> list[dict[str, Any]]:
    async with request.app.state.runtime.uow() as uow:
        people = await handlers.list_people(uow)
    return [p.as_json() for p in people]


@router.get("/users/{public_id}")
async def get_user(public_id: str, request: Request, admin: Admin) -> dict[str, Any]:
    try:
        async with request.app.state.runtime.uow() as uow:
            person = await handlers.get_person(uow, public_id)
    except handlers.PersonNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no person {public_id}")
    return person.as_json()


@router.patch("/users/{public_id}")
async def change_user(
    public_id: str, body: PersonPatch, request: Request, admin: Admin
) -> dict[str, Any]:
    command = handlers.ChangePerson(
        public_id=public_id,
        role=body.role,
        full_name=body.full_name,
        email=body.email,
        active=body.active,
        actor_public_id=admin.public_id,
    )
    try:
        async with request.app.state.runtime.uow() as uow:
            person = await handlers.change_person(uow, command)
    except handlers.PersonNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no person {public_id}")
    except PersonRuleError as error:
        raise _unprocessable(error)
    except PersonConflict as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error))
    return person.as_json()


@router.get("/me")
async def me(person: Me) -> dict[str, Any]:
    return person.as_json()
