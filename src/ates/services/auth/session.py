"""The sign-in session at auth itself: who is signed in to the provider, and CSRF tokens.

The session is Starlette's signed cookie (HttpOnly, SameSite=Lax), set up for every
service by ``ates.platform.web``, and recorded on the server (``ates.platform.sessions``).
Signing in replaces the whole session (new contents, new CSRF token), and the person is
looked up again on every use: deactivating someone ends their sign-in at auth at once, a
session ends ``SESSION_MAX_AGE`` after sign-in however busy it is (OWASP ASVS 5 §7.3:
absolute timeout), and logging out ends it on the server, so a copy of the cookie can no
longer get authorization codes.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from ates.platform import sessions
from ates.platform.dependencies import RuntimeDep
from ates.platform.pages import (
    SESSION_KEY,
    LoginRequired,
    PageForbidden,
    principal_from_session,
    principal_to_session,
)
from ates.platform.runtime import Runtime
from ates.platform.security import Principal
from ates.services.auth.domain import SESSION_MAX_AGE
from ates.services.auth.models import Person

SIGNED_IN_AT = "signed_in_at"
CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"


async def start_session(request: Request, runtime: Runtime, person: Person) -> None:
    await sessions.start(request, runtime, person.public_id, SESSION_MAX_AGE)
    request.session[SESSION_KEY] = principal_to_session(principal(person))
    request.session[SIGNED_IN_AT] = int(time.time())


async def end_session(request: Request, runtime: Runtime) -> None:
    await sessions.end(request, runtime)


def principal(person: Person) -> Principal:
    return Principal(
        public_id=uuid.UUID(person.public_id),
        role=person.role,
        username=person.username,
        full_name=person.full_name,
    )


async def signed_in_person(request: Request, runtime: Runtime) -> Person | None:
    """The person signed in to auth, if the session is still good."""
    found = principal_from_session(request.session.get(SESSION_KEY))
    if found is None or not isinstance(request.session.get(SIGNED_IN_AT), int):
        return None
    async with runtime.db.reader() as session:
        good = await sessions.started_at(session, request, str(found.public_id))
        person: Person | None = await session.scalar(
            select(Person).where(Person.public_id == str(found.public_id))
        )
    if good is None:  # ended, expired or never known: nothing left to delete
        request.session.clear()
        return None
    if person is None or not person.active:
        await end_session(request, runtime)
        return None
    return person


async def page_person(request: Request, runtime: RuntimeDep) -> Person:
    person = await signed_in_person(request, runtime)
    if person is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return person


async def page_admin(person: Annotated[Person, Depends(page_person)]) -> Person:
    if person.role != "admin":
        raise PageForbidden("This page is for admins only.")
    return person


SignedIn = Annotated[Person, Depends(page_person)]
SignedInAdmin = Annotated[Person, Depends(page_admin)]


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_KEY] = token
    return token


def csrf_ok(request: Request, submitted: object) -> bool:
    expected = request.session.get(CSRF_KEY)
    return (
        isinstance(expected, str)
        and isinstance(submitted, str)
        and secrets.compare_digest(expected.encode(), submitted.encode())
    )
