"""What a request handler of any service asks FastAPI for: the process's ``Runtime`` and
the person a bearer token names (with role guards).

Async on purpose: FastAPI runs a plain ``def`` dependency on a worker thread, and a
thread hop per request cost more than everything these do.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ates.platform.runtime import Runtime
from ates.platform.security import ROLES, InvalidToken, Principal


async def current_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(current_runtime)]

_bearer = HTTPBearer(auto_error=False)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def current_principal(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    try:
        return await runtime.verifier.verify(credentials.credentials)
    except InvalidToken as error:
        raise _unauthorized(str(error)) from error


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the current person, if their role is one of ``roles`` (else 403)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    async def guard(principal: CurrentUser) -> Principal:
        if not principal.has_role(*roles):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"requires role: {' or '.join(roles)}"
            )
        return principal

    return guard
