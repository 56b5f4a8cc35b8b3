"""Use cases of the tasks service: create and complete a task.

Each use case takes a unit of work and commits it once: the task and the events about
it are stored together or not at all. The shuffle lives in ``shuffle``; reads in
``queries``; the events the service consumes in ``consumers``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Table, bindparam, insert, select, update

from ates.platform.uow import UnitOfWork
from ates.schemas.tasks import TaskAssigned, TaskCompleted, TaskCreated
from ates.services.tasks import domain, queries
from ates.services.tasks.domain import NoActiveWorker
from ates.services.tasks.models import AssignmentRecord, Task


class TaskNotFound(LookupError):
    pass


class InvalidTask(ValueError):
    """A field of a new task breaks a rule; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class CreateTask:
    title: str
    description: str = ""
    jira_id: str | None = None
    created_by: str | None = None  # the person asking (None: an operator's command)


async def create_task(uow: UnitOfWork, command: CreateTask) -> Task:
    """T3/T4: store the task, give it to a random active worker, announce both."""
    try:
        title = domain.check_title(command.title)
    except ValueError as error:
        raise InvalidTask("title", str(error)) from error
    try:
        jira_id = domain.check_jira_id(command.jira_id)
    except ValueError as error:
        raise InvalidTask("jira_id", str(error)) from error
    try:
        domain.check_description(command.description)
    except ValueError as error:
        raise InvalidTask("description", str(error)) from error
    assignee = await queries.random_active_worker(uow)
    if assignee is None:
        raise NoActiveWorker("there is no active worker to assign the task to")
    task = Task(
        public_id=str(uuid.uuid4()),
        title=title,
        jira_id=jira_id,
        description=command.description,
        status=domain.OPEN,
        assignee_public_id=assignee,
        created_at=datetime.now(UTC),
        completed_at=None,
        created_by_public_id=command.created_by,
    )
    assignment = TaskAssigned(task.public_id, assignee, None, reason="created", shuffle_id=None)
    # Prebuilt INSERTs, not the ORM's unit of work: the request's hot path (the returned
    # object is detached, filled with exactly what was stored). The history row goes in
    # the same transaction as the task and its events.
    connection = await uow.session.connection()
    await connection.execute(_INSERT_TASK, {c: getattr(task, c) for c in _NEW_TASK_COLUMNS})
    await connection.execute(_INSERT_ASSIGNMENT, history_row(assignment, task.created_at))
    await uow.emit(TaskCreated(task.public_id, task.title, task.jira_id, task.description))
    await uow.emit(assignment)
    await uow.commit()
    return task


def history_row(assignment: TaskAssigned, at: datetime) -> dict[str, object]:
    """The ``assignments`` row of one assignment: what its ``TaskAssigned`` says."""
    return {**assignment.to_data(), "assigned_at": at}


async def complete_task(uow: UnitOfWork, task_public_id: str, by: str) -> Task:
    """T6: the assignee marks the task done; billing hears ``TaskCompleted``."""
    # FOR UPDATE (PostgreSQL) so a shuffle cannot move the task between check and write;
    # SQLite's BEGIN IMMEDIATE already serialises writers.
    connection = await uow.session.connection()
    row = (await connection.execute(_TASK_FOR_UPDATE, {"public_id": task_public_id})).first()
    if row is None:
        raise TaskNotFound(f"no task {task_public_id}")
    task = Task(**row._mapping)
    domain.check_completion(status=task.status, assignee=task.assignee_public_id, by=by)
    task.status = domain.DONE
    task.completed_at = datetime.now(UTC)
    await connection.execute(
        _COMPLETE, {"task_id": task.id, "status": task.status, "completed_at": task.completed_at}
    )
    await uow.emit(
        TaskCompleted(
            task_public_id=task.public_id,
            assignee_public_id=task.assignee_public_id,
            completed_at=task.completed_at.isoformat().replace("+00:00", "Z"),
        )
    )
    await uow.commit()
    return task


_tasks = Table("tasks", Task.metadata)
_NEW_TASK_COLUMNS = [c.name for c in _tasks.c if c.name != "id"]
_INSERT_TASK = insert(_tasks)
_INSERT_ASSIGNMENT = insert(Table("assignments", AssignmentRecord.metadata))
_TASK_FOR_UPDATE = (
    select(_tasks).where(_tasks.c.public_id == bindparam("public_id")).with_for_update()
)
_COMPLETE = (
    update(_tasks)
    .where(_tasks.c.id == bindparam("task_id"))
    .values(status=bindparam("status"), completed_at=bindparam("completed_at"))
)
