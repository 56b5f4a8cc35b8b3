"""The task tracker's HTML pages (T1, T5, T6): my tasks, all tasks (admins and managers),
finding tasks, a task with its assignment history, the create form, and the Shuffle
button behind a confirmation. Actions post, then redirect (303) with a flash message; a
create that fails shows the form again with what was typed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ates.platform.dependencies import RuntimeDep
from ates.platform.login import safe_next
from ates.platform.pages import PageUser, page_roles
from ates.platform.params import is_uuid
from ates.platform.runtime import Runtime
from ates.platform.security import Principal
from ates.platform.web import error_page, flash, render
from ates.services.tasks import queries
from ates.services.tasks.api import MANAGING
from ates.services.tasks.commands import (
    CreateTask,
    InvalidTask,
    TaskNotFound,
    complete_task,
    create_task,
)
from ates.services.tasks.domain import OPEN, TaskRuleBroken
from ates.services.tasks.finding import Finding, parse_finding
from ates.services.tasks.models import Task
from ates.services.tasks.shuffle import shuffle_tasks

# The create form's longest description (10,000 characters) form-encodes to up to 90 KB
# (9 bytes a character in some scripts): more than the 64 KiB a JSON body may have.
router = APIRouter(include_in_schema=False, max_body_size=256 * 1024)

ManagingPage = Annotated[Principal, Depends(page_roles(*MANAGING))]
PAGE = 50
# The form's labels: a message about a field names it as the person saw it.
LABELS = {"title": "Title", "jira_id": "Jira id", "description": "Description"}


def _back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _worded(error: InvalidTask) -> str:
    """A field error in the form's words: "Jira id: …", not "jira_id: …"."""
    message = str(error).removeprefix(f"{error.field}: ").replace("jira_id field", "Jira id field")
    return f"{LABELS.get(error.field, error.field)}: {message}"


async def _rows(runtime: Runtime, tasks: list[Task]) -> list[dict[str, Any]]:
    """Tasks as the tables show them: names instead of ids."""
    async with runtime.db.reader() as session:
        names = await queries.names_of(session, {t.assignee_public_id for t in tasks})
    return [
        {"task": t, "assignee": names.get(t.assignee_public_id, t.assignee_public_id)}
        for t in tasks
    ]


async def _list_page(
    request: Request,
    user: Principal,
    runtime: Runtime,
    finding: Finding,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """My tasks or All tasks, found and paged as ``finding`` says, with the create form
    (filled with ``form`` and its ``error`` when a create failed)."""
    for problem in finding.problems:
        flash(request, problem, "error")
    async with runtime.db.reader() as session:
        page = await queries.numbered_page(
            session,
            finding.filters(str(user.public_id)),
            sort=finding.sort,
            number=finding.page,
            size=PAGE,
        )
        picker = await queries.people_to_pick(session) if finding.everyone else []
    return render(
        request,
        "tasks_list.html",
        status_code=status_code,
        user=user,
        finding=finding,
        page=page,
        rows=await _rows(runtime, page.tasks),
        picker=picker,
        managing=user.has_role(*MANAGING),
        form=form or {},
        error=error,
    )


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request, user: PageUser, runtime: RuntimeDep) -> Response:
    """Admins and managers land on All tasks, everyone else on their own."""
    if user.has_role(*MANAGING):
        return _back("/all")
    return await my_tasks(request, user, runtime)


@router.get("/mine", response_class=HTMLResponse)
async def my_tasks(request: Request, user: PageUser, runtime: RuntimeDep) -> HTMLResponse:
    finding = parse_finding(request.query_params, everyone=False)
    return await _list_page(request, user, runtime, finding)


@router.get("/all", response_class=HTMLResponse)
async def all_tasks(request: Request, user: ManagingPage, runtime: RuntimeDep) -> HTMLResponse:
    finding = parse_finding(request.query_params, everyone=True)
    return await _list_page(request, user, runtime, finding)


@router.post("/tasks", response_model=None)
async def create(
    request: Request,
    user: PageUser,
    runtime: RuntimeDep,
    title: Annotated[str, Form()] = "",
    jira_id: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "/mine",
) -> Response:
    back = safe_next(back, "/mine")
    command = CreateTask(
        title=title,
        description=description,
        jira_id=jira_id or None,
        created_by=str(user.public_id),
    )
    try:
        async with runtime.uow() as uow:
            task = await create_task(uow, command)
    except (InvalidTask, TaskRuleBroken) as error:
        message = _worded(error) if isinstance(error, InvalidTask) else str(error)
        everyone = back.startswith("/all") and user.has_role(*MANAGING)
        return await _list_page(
            request,
            user,
            runtime,
            parse_finding({}, everyone=everyone),
            form={"title": title, "jira_id": jira_id, "description": description},
            error=f"Task not created. {message[:1].upper()}{message[1:]}",
            status_code=409 if isinstance(error, TaskRuleBroken) else 422,
        )
    async with runtime.db.reader() as session:
        names = await queries.names_of(session, {task.assignee_public_id})
    who = names.get(task.assignee_public_id, "a worker")
    flash(request, f"Task “{task.title}” created and assigned to {who}.")
    return _back(back)


@router.get("/tasks/{public_id}", response_class=HTMLResponse)
async def task_page(
    request: Request, public_id: str, user: PageUser, runtime: RuntimeDep
) -> HTMLResponse:
    """A task with who created it, who has it, and every assignment it went through."""
    async with runtime.db.reader() as session:
        task = await queries.get_task(session, public_id) if is_uuid(public_id) else None
        if task is None:
            return error_page(request, 404, "There is no such task.")
        records = await queries.history(session, public_id)
        ids = {task.assignee_public_id, *(r.assignee_public_id for r in records)}
        ids |= {r.previous_assignee_public_id for r in records if r.previous_assignee_public_id}
        if task.created_by_public_id:
            ids.add(task.created_by_public_id)
        names = await queries.names_of(session, ids)
    return render(
        request,
        "task.html",
        user=user,
        task=task,
        records=records,
        name=lambda public_id: names.get(public_id, f"someone not known here ({public_id})"),
        mine=task.assignee_public_id == str(user.public_id),
    )


@router.post("/tasks/{public_id}/complete")
async def complete(
    request: Request,
    public_id: str,
    user: PageUser,
    runtime: RuntimeDep,
    back: Annotated[str, Form()] = "/mine",
) -> RedirectResponse:
    back = safe_next(back, "/mine")
    if not is_uuid(public_id):  # no task has such an id (and PostgreSQL may refuse it)
        flash(request, f"Not done. no task {public_id}", "error")
        return _back(back)
    try:
        async with runtime.uow() as uow:
            task = await complete_task(uow, public_id, by=str(user.public_id))
    except (TaskNotFound, TaskRuleBroken) as error:
        flash(request, f"Not done. {error}", "error")
        return _back(back)
    flash(request, f"“{task.title}” is done.")
    return _back(back)


@router.get("/shuffle", response_class=HTMLResponse)
async def confirm_shuffle(
    request: Request, user: ManagingPage, runtime: RuntimeDep
) -> HTMLResponse:
    """The question before the shuffle, with what it will do (T5: it charges again)."""
    async with runtime.db.reader() as session:
        open_tasks = await queries.count_tasks(session, queries.Filters(status=OPEN))
    async with runtime.uow() as uow:
        workers = len(await queries.active_workers(uow))
    return render(request, "shuffle.html", user=user, open_tasks=open_tasks, workers=workers)


@router.post("/shuffle")
async def shuffle(
    request: Request,
    user: ManagingPage,
    runtime: RuntimeDep,
    confirmed: Annotated[str, Form()] = "",
) -> RedirectResponse:
    if confirmed != "yes":  # only the confirmation page's button shuffles
        return _back("/shuffle")
    try:
        result = await shuffle_tasks(runtime.uow)
    except TaskRuleBroken as error:
        flash(request, f"Not shuffled. {error}", "error")
        return _back("/all")
    noun = "task" if result.reassigned == 1 else "tasks"
    flash(request, f"Shuffled: {result.reassigned:,} open {noun} reassigned.")
    return _back("/all")
