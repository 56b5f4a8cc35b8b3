"""The operator's side of every service, for admins: the service's status (a page, and
``GET /api/admin/status`` for ``ates status`` and scripts) and, in a service that
consumes events, its dead-letter console.

The console lists the letters with their error, payload and attempts; Replay applies one
with the service's current handlers through the inbox of the consumer that gave up (what
``ates dlq replay`` does: a replay after a fix applies the event once, however often it
is pressed), Discard keeps it for the record, never applied. The buttons are page forms:
the session cookie (SameSite=Lax) and the same-origin check of every page form
(``ates.platform.middleware.SameOriginForms``) keep other sites from pressing them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ates.platform import deadletters
from ates.platform.api_errors import errors
from ates.platform.dependencies import RuntimeDep, require_roles
from ates.platform.limits import JSON_BODY_MAX
from ates.platform.pages import page_roles
from ates.platform.runtime import Runtime
from ates.platform.security import Principal
from ates.platform.status import read_status
from ates.platform.web import flash, render

AdminPage = Annotated[Principal, Depends(page_roles("admin"))]
LetterStatus = Literal["pending", "replayed", "discarded", "superseded", "all"]
CONSOLE = "/admin/dead-letters"
SHOWN = 200  # letters on one page, oldest first

api = APIRouter(
    prefix="/api/admin",
    tags=["operations"],
    dependencies=[Depends(require_roles("admin"))],
    responses=errors(401, 403),
)
pages = APIRouter(prefix="/admin", include_in_schema=False)
console = APIRouter(prefix="/admin", include_in_schema=False)


@api.get("/status")
async def status_json(runtime: RuntimeDep) -> dict[str, Any]:
    """This service's health, version, outbox backlog, dead letters pending, consumer
    groups (events applied, lag at the broker) and the broker's streams (admin)."""
    return await read_status(runtime)


@pages.get("/status", response_class=HTMLResponse)
async def status_page(request: Request, user: AdminPage, runtime: RuntimeDep) -> HTMLResponse:
    return render(
        request,
        "admin_status.html",
        user=user,
        status=await read_status(runtime),
        consumes=bool(runtime.spec.consumes),
    )


@console.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters_page(
    request: Request,
    user: AdminPage,
    runtime: RuntimeDep,
    status: Annotated[LetterStatus, Query()] = "pending",
) -> HTMLResponse:
    letters = await deadletters.list_dead_letters(
        runtime.db, None if status == "all" else status, limit=SHOWN
    )
    return render(
        request,
        "dead_letters.html",
        user=user,
        status=status,
        statuses=get_args(LetterStatus),
        letters=[(letter, _readable(letter.payload)) for letter in letters],
        shown=SHOWN,
    )


@console.post("/dead-letters/{letter_id}/replay")
async def replay(
    request: Request, letter_id: int, user: AdminPage, runtime: RuntimeDep
) -> RedirectResponse:
    try:
        outcome = await deadletters.replay(runtime.consumer(), letter_id)
    except (LookupError, ValueError) as error:
        flash(request, f"Not replayed: {error}.", "error")
    except Exception as error:
        flash(request, f"Replay of #{letter_id} failed; it stays pending: {error!r}", "error")
    else:
        flash(request, f"Dead letter #{letter_id} replayed: {outcome}.")
    return RedirectResponse(CONSOLE, status_code=303)


@console.post("/dead-letters/{letter_id}/discard")
async def discard(
    request: Request, letter_id: int, user: AdminPage, runtime: RuntimeDep
) -> RedirectResponse:
    letter = await deadletters.get_dead_letter(runtime.db, letter_id)
    if letter is None or letter.status != "pending":
        why = "there is no such letter" if letter is None else f"it is {letter.status} already"
        flash(request, f"Dead letter #{letter_id} not discarded: {why}.", "error")
    else:
        await deadletters.discard(runtime.db, letter_id)
        flash(request, f"Dead letter #{letter_id} discarded.")
    return RedirectResponse(CONSOLE, status_code=303)


def _readable(payload: str) -> str:
    """The payload as indented JSON, or as it came if it is no JSON at all."""
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        return payload


def install_admin(app: FastAPI, runtime: Runtime) -> None:
    routers = [api, pages]
    if runtime.spec.consumes:  # a service that consumes nothing has no dead letters
        routers.append(console)
    for router in routers:  # bodies capped as every router's are (create_app)
        app.include_router(router, max_body_size=JSON_BODY_MAX)
