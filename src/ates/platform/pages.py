"""Who is looking at a page: the person signed in through auth, kept in a session cookie.

Every service's pages depend on :data:`PageUser`. A visitor without a session is sent to
``/login?next=…``, which runs the OAuth authorization-code flow (PKCE) against auth and
stores the principal in the session (``ates.platform.login``). The cookie is signed,
HttpOnly and SameSite=Lax (Starlette's SessionMiddleware, installed by ``web``); the
session is also recorded on the server (``ates.platform.sessions``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request

from ates.platform import sessions
from ates.platform.dependencies import RuntimeDep
from ates.platform.security import Principal

SESSION_KEY = "principal"


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class PageForbidden(Exception):
    def __init__(self, message: str, user: Principal | None = None) -> None:
        self.message = message
        self.user = user  # as the service knows them now, for the page's header


def principal_to_session(principal: Principal) -> dict[str, str]:
    return {
        "public_id": str(principal.public_id),
        "role": principal.role,
        "username": principal.username,
        "full_name": principal.full_name,
    }


def principal_from_session(value: Any) -> Principal | None:
    if not isinstance(value, dict):
        return None
    try:
        return Principal(
            public_id=uuid.UUID(value["public_id"]),
            role=str(value["role"]),
            username=str(value.get("username", "")),
            full_name=str(value.get("full_name", "")),
        )
    except (KeyError, ValueError, TypeError):
        return None


async def page_user(request: Request, runtime: RuntimeDep) -> Principal:
    """The person signed in, if their session is still good (``ates.platform.sessions``),
    with the role this service's copy of people gives them now."""
    principal = principal_from_session(request.session.get(SESSION_KEY))
    if principal is not None:
        principal = await sessions.current(request, runtime, principal, runtime.spec.standing)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return principal


PageUser = Annotated[Principal, Depends(page_user)]


def page_roles(*roles: str) -> Any:
    """A page dependency: the signed-in person, if their role is one of ``roles``."""

    async def guard(principal: PageUser) -> Principal:
        if not principal.has_role(*roles):
            raise PageForbidden(
                f"This page is for {' and '.join(r + 's' for r in roles)} only.", principal
            )
        return principal

    return guard
