"""The tasks JSON API (DESIGN.md §4 tasks): parse, call a use case, answer.

Lists are pages: a JSON array, newest first (or latest completed first with
``sort=completed``), at most ``limit`` (≤ 200) tasks; when there is more, the response
carries ``Link: <…&cursor=N>; rel="next"`` (RFC 8288). ``q``, ``assignee``, ``status`` and
``created_by`` narrow the list, as the All tasks page does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import AfterValidator, BaseModel, Field, field_validator

from ates.platform.api_errors import errors
from ates.platform.dependencies import CurrentUser, RuntimeDep, require_roles
from ates.platform.params import UUID_PATTERN, is_uuid
from ates.platform.security import Principal
from ates.platform.text import WHITESPACE
from ates.services.tasks import domain, queries
from ates.services.tasks.commands import (
    CreateTask,
    InvalidTask,
    TaskNotFound,
    complete_task,
    create_task,
)
from ates.services.tasks.domain import AlreadyDone, NoActiveWorker, NotTheAssignee
from ates.services.tasks.models import Task
from ates.services.tasks.shuffle import shuffle_tasks

router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=errors(401))

MANAGING = ("admin", "manager")


Managing = Annotated[Principal, Depends(require_roles(*MANAGING))]


class NewTask(BaseModel):
    """The rules are the domain's (its checks run here, with its words); the patterns
    only tell the OpenAPI document what those checks accept."""

    title: str = Field(
        max_length=domain.TITLE_MAX,
        json_schema_extra={"pattern": rf"^[^\[\]\x00]*[^{WHITESPACE}\[\]\x00][^\[\]\x00]*$"},
    )
    jira_id: str | None = Field(
        default=None,
        max_length=domain.JIRA_ID_MAX,
        json_schema_extra={"pattern": rf"^[{WHITESPACE}]*[^{WHITESPACE}\[\]\x00]*[{WHITESPACE}]*$"},
    )
    description: str = Field(
        default="", max_length=domain.DESCRIPTION_MAX, json_schema_extra={"pattern": r"^[^\x00]*$"}
    )

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return domain.check_title(value)

    @field_validator("jira_id")
    @classmethod
    def _jira_id(cls, value: str | None) -> str | None:
        return domain.check_jira_id(value)

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        return domain.check_description(value)


class TaskOut(BaseModel):
    public_id: str
    title: str
    jira_id: str | None
    description: str
    status: str
    assignee_public_id: str
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        return cls(
            public_id=task.public_id,
            title=task.title,
            jira_id=task.jira_id,
            description=task.description,
            status=task.status,
            assignee_public_id=task.assignee_public_id,
            created_at=task.created_at,
            completed_at=task.completed_at,
        )


class AssignmentOut(BaseModel):
    """One entry of a task's assignment history (what its ``TaskAssigned`` said)."""

    assignee_public_id: str
    previous_assignee_public_id: str | None
    reason: Literal["created", "shuffle", "recorded"] = Field(
        description="recorded: the assignee when the history began (older tasks)"
    )
    shuffle_id: str | None
    assigned_at: datetime


class ShuffleOut(BaseModel):
    shuffle_id: str
    reassigned: int


def _error(code: int, error: Exception) -> HTTPException:
    return HTTPException(code, detail=str(error))


def _assignee(value: str) -> str:
    if value not in ("me", "all") and not is_uuid(value):
        raise ValueError("must be 'me', 'all' or a person's public id")
    return value


Assignee = Annotated[
    str,
    AfterValidator(_assignee),
    Query(
        description="'me', 'all' or a person's public id (admins, managers)",
        json_schema_extra={"pattern": f"^(me|all|{UUID_PATTERN.strip('^$')})$"},
    ),
]
# Ids are int4 on PostgreSQL: a bigger cursor names no task and cannot be sent as one.
Cursor = Annotated[int | None, Query(ge=1, le=queries.MAX_CURSOR)]


def _searchable(value: str | None) -> str | None:
    # PostgreSQL text cannot hold a NUL: no task has one, and the database would refuse it
    if value is not None and "\x00" in value:
        raise ValueError(domain.NO_NUL)
    return value


Search = Annotated[
    str | None,
    AfterValidator(_searchable),
    Query(
        max_length=queries.MAX_QUERY,
        description="part of the title or the jira id, any case",
        json_schema_extra={"pattern": r"^[^\x00]*$"},
    ),
]


def _known(public_id: str) -> str:
    """A task id that can exist (a UUID); anything else is 404 at once."""
    if not is_uuid(public_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no task {public_id}")
    return public_id


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(409, 413))
async def create(body: NewTask, user: CurrentUser, runtime: RuntimeDep) -> TaskOut:
    command = CreateTask(
        title=body.title,
        description=body.description,
        jira_id=body.jira_id,
        created_by=str(user.public_id),
    )
    try:
        async with runtime.uow() as uow:
            task = await create_task(uow, command)
    except NoActiveWorker as error:
        raise _error(status.HTTP_409_CONFLICT, error) from error
    except InvalidTask as error:
        raise _error(status.HTTP_422_UNPROCESSABLE_ENTITY, error) from error
    return TaskOut.of(task)


@router.get("", responses=errors(403))
async def list_(
    request: Request,
    response: Response,
    user: CurrentUser,
    runtime: RuntimeDep,
    status_: Annotated[Literal["open", "done"] | None, Query(alias="status")] = None,
    assignee: Assignee = "me",
    q: Search = None,
    created_by: Annotated[
        Literal["me"] | None, Query(description="'me': only the tasks I created")
    ] = None,
    sort: Annotated[
        queries.Sort,
        Query(description="created: newest first; completed: latest completed first"),
    ] = "created",
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = queries.DEFAULT_PAGE,
    cursor: Cursor = None,
) -> list[TaskOut]:
    """My tasks; admins and managers may list everyone's (``assignee=all``) or one
    person's. ``q`` finds a text in the title or the jira id."""
    own = str(user.public_id)
    who: str | None = own if assignee in ("me", own) else None
    if who is None and not user.has_role(*MANAGING):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="assignee: you may only list your own tasks"
        )
    if assignee not in ("me", "all", own):
        who = assignee
    async with runtime.db.reader() as session:
        page = await queries.list_tasks(
            session,
            assignee=who,
            status=status_,
            q=q,
            created_by=own if created_by == "me" else None,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
    if page.next_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return [TaskOut.of(task) for task in page.tasks]


@router.post("/shuffle", responses=errors(403, 409))
async def shuffle(user: Managing, runtime: RuntimeDep) -> ShuffleOut:
    try:
        result = await shuffle_tasks(runtime.uow)
    except NoActiveWorker as error:
        raise _error(status.HTTP_409_CONFLICT, error) from error
    return ShuffleOut(shuffle_id=result.shuffle_id, reassigned=result.reassigned)


@router.get("/{public_id}", responses=errors(404))
async def get(public_id: str, user: CurrentUser, runtime: RuntimeDep) -> TaskOut:
    async with runtime.db.reader() as session:
        task = await queries.get_task(session, _known(public_id))
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no task {public_id}")
    return TaskOut.of(task)


@router.get("/{public_id}/assignments", responses=errors(404))
async def assignments(
    public_id: str, user: CurrentUser, runtime: RuntimeDep
) -> list[AssignmentOut]:
    """The task's assignment history, oldest first: its creation and every shuffle."""
    async with runtime.db.reader() as session:
        task = await queries.get_task(session, _known(public_id))
        if task is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no task {public_id}")
        records = await queries.history(session, public_id)
    return [
        AssignmentOut(
            assignee_public_id=r.assignee_public_id,
            previous_assignee_public_id=r.previous_assignee_public_id,
            reason=r.reason,  # type: ignore[arg-type]
            shuffle_id=r.shuffle_id,
            assigned_at=r.assigned_at,
        )
        for r in records
    ]


@router.post("/{public_id}/complete", responses=errors(403, 404, 409))
async def complete(public_id: str, user: CurrentUser, runtime: RuntimeDep) -> TaskOut:
    try:
        async with runtime.uow() as uow:
            task = await complete_task(uow, _known(public_id), by=str(user.public_id))
    except TaskNotFound as error:
        raise _error(status.HTTP_404_NOT_FOUND, error) from error
    except NotTheAssignee as error:
        raise _error(status.HTTP_403_FORBIDDEN, error) from error
    except AlreadyDone as error:
        raise _error(status.HTTP_409_CONFLICT, error) from error
    return TaskOut.of(task)
