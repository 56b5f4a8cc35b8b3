"""The task tracker's HTML pages (T1, T6, T5): my tasks, a create form, all tasks and
the Shuffle button for admins and managers. Every form posts, then redirects (303) with a
flash message saying what happened."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ates.platform.pages import PageUser, page_roles
from ates.platform.params import is_uuid
from ates.platform.security import Principal
from ates.platform.service import Runtime
from ates.platform.web import flash, render
from ates.services.tasks import queries
from ates.services.tasks.api import MANAGING, RuntimeDep
from ates.services.tasks.domain import OPEN, TaskRuleBroken
from ates.services.tasks.handlers import (
    CreateTask,
    InvalidTask,
    TaskNotFound,
    complete_task,
    create_task,
)
from ates.services.tasks.models import Task
from ates.services.tasks.shuffle import shuffle_tasks

# The create form's longest description (10,000 characters) form-encodes to up to 90 KB
# (9 bytes a character in some scripts): more than the 64 KiB a JSON body may have.
router = APIRouter(include_in_schema=False, max_body_size=256 * 1024)

ManagingPage = Annotated[Principal, Depends(page_roles(*MANAGING))]
Status = Literal["open", "done"]
PAGE = 50


def _back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _rows(runtime: Runtime, tasks: list[Task]) -> list[dict[str, Any]]:
    """Tasks as the templates show them: names instead of ids, business-zone times."""
    zone = runtime.settings.zone

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%d.%m.%Y %H:%M") if moment else ""

    async with runtime.db.reader() as session:
        names = await queries.names_of(session, {t.assignee_public_id for t in tasks})
    return [
        {
            "public_id": t.public_id,
            "title": t.title,
            "jira_id": t.jira_id,
            "description": t.description,
            "status": t.status,
            "assignee_public_id": t.assignee_public_id,
            "assignee": names.get(t.assignee_public_id, t.assignee_public_id),
            "created": local(t.created_at),
            "completed": local(t.completed_at),
        }
        for t in tasks
    ]


@router.get("/", response_class=HTMLResponse)
async def my_tasks(
    request: Request,
    user: PageUser,
    runtime: RuntimeDep,
    show: Status = OPEN,
    cursor: Annotated[int | None, Query(ge=1, le=queries.MAX_CURSOR)] = None,
) -> HTMLResponse:
    async with runtime.db.reader() as session:
        page = await queries.list_tasks(
            session, assignee=str(user.public_id), status=show, limit=PAGE, cursor=cursor
        )
    next_url = f"/?{urlencode({'show': show, 'cursor': page.next_cursor})}"
    return render(
        request,
        "tasks_mine.html",
        user=user,
        show=show,
        tasks=await _rows(runtime, page.tasks),
        next_url=next_url if page.next_cursor else None,
        managing=user.has_role(*MANAGING),
    )


@router.post("/tasks")
async def create(
    request: Request,
    user: PageUser,
    runtime: RuntimeDep,
    title: Annotated[str, Form()] = "",
    jira_id: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> RedirectResponse:
    command = CreateTask(title=title, description=description, jira_id=jira_id or None)
    try:
        async with runtime.uow() as uow:
            task = await create_task(uow, command)
    except (InvalidTask, TaskRuleBroken) as error:
        flash(request, f"Task not created. {error}", "error")
        return _back("/")
    async with runtime.db.reader() as session:
        names = await queries.names_of(session, {task.assignee_public_id})
    who = names.get(task.assignee_public_id, "a worker")
    flash(request, f"Task “{task.title}” created and assigned to {who}.")
    return _back("/")


@router.post("/tasks/{public_id}/complete")
async def complete(
    request: Request, public_id: str, user: PageUser, runtime: RuntimeDep
) -> RedirectResponse:
    if not is_uuid(public_id):  # no task has such an id (and PostgreSQL may refuse it)
        flash(request, f"Not done. no task {public_id}", "error")
        return _back("/")
    try:
        async with runtime.uow() as uow:
            task = await complete_task(uow, public_id, by=str(user.public_id))
    except (TaskNotFound, TaskRuleBroken) as error:
        flash(request, f"Not done. {error}", "error")
        return _back("/")
    flash(request, f"“{task.title}” is done.")
    return _back("/")


@router.get("/all", response_class=HTMLResponse)
async def all_tasks(
    request: Request,
    user: ManagingPage,
    runtime: RuntimeDep,
    status: Status | Literal[""] = "",
    assignee: str = "",
    cursor: Annotated[int | None, Query(ge=1, le=queries.MAX_CURSOR)] = None,
) -> HTMLResponse:
    who = assignee.strip() or None
    if who is not None and not is_uuid(who):
        flash(request, "assignee: must be a person's public id; showing everyone's.", "error")
        who = None
    async with runtime.db.reader() as session:
        page = await queries.list_tasks(
            session,
            assignee=who,
            status=status or None,
            limit=PAGE,
            cursor=cursor,
        )
    query = {"status": status, "assignee": assignee, "cursor": page.next_cursor}
    return render(
        request,
        "tasks_all.html",
        user=user,
        status=status,
        assignee=assignee,
        tasks=await _rows(runtime, page.tasks),
        next_url=f"/all?{urlencode(query)}" if page.next_cursor else None,
    )


@router.post("/shuffle")
async def shuffle(request: Request, user: ManagingPage, runtime: RuntimeDep) -> RedirectResponse:
    try:
        result = await shuffle_tasks(runtime.uow)
    except TaskRuleBroken as error:
        flash(request, f"Not shuffled. {error}", "error")
        return _back("/all")
    noun = "task" if result.reassigned == 1 else "tasks"
    flash(request, f"Shuffled: {result.reassigned} open {noun} reassigned.")
    return _back("/all")
