"""Reading tasks: one by id with its history, or a filtered, sorted list.

Two ways through a list, for two readers:

- the API walks it by keyset (``cursor`` is the last task of the previous page), so
  every page costs the same however deep it is, and no page is unbounded (``MAX_PAGE``);
- the pages number it (``page`` of ``pages``, with the total), because a person wants to
  see where they are; a numbered page is an OFFSET, fine at the depths people click to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.events.ordering import stamp_time
from ates.platform.standing import Standing
from ates.platform.uow import UnitOfWork
from ates.services.tasks.domain import WORKER
from ates.services.tasks.models import AssignmentRecord, Person, Task

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_CURSOR = 2**31 - 1  # task ids are int4 on PostgreSQL
MAX_QUERY = 300  # a search longer than the longest title finds nothing anyway
SORTS = ("created", "completed")
Sort = Literal["created", "completed"]


@dataclass(frozen=True, slots=True)
class Filters:
    """What a list is narrowed to; None means any."""

    assignee: str | None = None
    status: str | None = None
    q: str | None = None  # part of the title or the jira id, any case
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    tasks: list[Task]
    next_cursor: int | None  # pass as ``cursor`` to get the next page; None: last page


@dataclass(frozen=True, slots=True)
class Numbered:
    """One numbered page of a list, and where it sits in the whole."""

    tasks: list[Task]
    number: int  # 1-based
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_shown(self) -> int:
        return 0 if not self.tasks else (self.number - 1) * self.size + 1

    @property
    def last_shown(self) -> int:
        return (self.number - 1) * self.size + len(self.tasks)


async def get_task(session: AsyncSession, public_id: str) -> Task | None:
    return await session.scalar(select(Task).where(Task.public_id == public_id))


def like_pattern(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, its own ``%``, ``_`` and ``\\``
    taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(query: Select[Any], filters: Filters) -> Select[Any]:
    if filters.assignee is not None:
        query = query.where(Task.assignee_public_id == filters.assignee)
    if filters.status is not None:
        query = query.where(Task.status == filters.status)
    if filters.created_by is not None:
        query = query.where(Task.created_by_public_id == filters.created_by)
    if filters.q:
        pattern = like_pattern(filters.q.strip())
        query = query.where(
            or_(
                Task.title.ilike(pattern, escape="\\"),
                Task.jira_id.ilike(pattern, escape="\\"),
            )
        )
    return query


def _ordered(query: Select[Any], sort: Sort) -> Select[Any]:
    if sort == "completed":
        # the latest completions first; open tasks (never completed) after, newest first
        return query.order_by(Task.completed_at.desc().nulls_last(), Task.id.desc())
    return query.order_by(Task.id.desc())


async def list_tasks(
    session: AsyncSession,
    *,
    assignee: str | None = None,
    status: str | None = None,
    q: str | None = None,
    created_by: str | None = None,
    sort: Sort = "created",
    limit: int = DEFAULT_PAGE,
    cursor: int | None = None,
) -> Page:
    """A keyset page of the tasks matching the filters, in ``sort`` order."""
    limit = max(1, min(limit, MAX_PAGE))
    filters = Filters(assignee=assignee, status=status, q=q, created_by=created_by)
    query = _ordered(_filtered(select(Task), filters), sort).limit(limit + 1)
    if cursor is not None:
        query = query.where(await _after(session, cursor, sort))
    found = list((await session.scalars(query)).all())
    more = len(found) > limit
    tasks = found[:limit]
    return Page(tasks, tasks[-1].id if more else None)


async def _after(session: AsyncSession, cursor: int, sort: Sort) -> Any:
    """The condition "comes after task ``cursor`` in ``sort`` order"."""
    if sort == "created":
        return Task.id < cursor
    last = await session.scalar(select(Task.completed_at).where(Task.id == cursor))
    if last is None:  # the cursor was an open task: only open tasks follow, by id
        return and_(Task.completed_at.is_(None), Task.id < cursor)
    return or_(
        Task.completed_at < last,
        and_(Task.completed_at == last, Task.id < cursor),
        Task.completed_at.is_(None),
    )


async def count_tasks(session: AsyncSession, filters: Filters) -> int:
    return int(
        await session.scalar(_filtered(select(func.count()).select_from(Task), filters)) or 0
    )


async def numbered_page(
    session: AsyncSession, filters: Filters, *, sort: Sort, number: int, size: int
) -> Numbered:
    """Page ``number`` (1-based) of the matching tasks, with their total; a number past
    the last page shows the last page."""
    total = await count_tasks(session, filters)
    pages = max(1, -(-total // size))
    number = max(1, min(number, pages))
    query = _ordered(_filtered(select(Task), filters), sort)
    tasks = list((await session.scalars(query.limit(size).offset((number - 1) * size))).all())
    return Numbered(tasks, number, size, total)


async def history(session: AsyncSession, task_public_id: str) -> list[AssignmentRecord]:
    """Every recorded assignment of a task, oldest first."""
    rows = await session.scalars(
        select(AssignmentRecord)
        .where(AssignmentRecord.task_public_id == task_public_id)
        .order_by(AssignmentRecord.id)
    )
    return list(rows.all())


async def names_of(session: AsyncSession, public_ids: set[str]) -> dict[str, str]:
    """Display names of the given people (for pages); unknown people are left out."""
    if not public_ids:
        return {}
    rows = await session.execute(
        select(Person.public_id, Person.full_name, Person.username).where(
            Person.public_id.in_(public_ids)
        )
    )
    return {row.public_id: row.full_name or row.username or row.public_id for row in rows}


@dataclass(frozen=True, slots=True)
class Pickable:
    """A person as the people picker offers them."""

    public_id: str
    name: str
    role: str | None
    active: bool


async def people_to_pick(session: AsyncSession) -> list[Pickable]:
    """Everyone tasks may be assigned to or have been: workers first (active before
    deactivated), then the others, each by name."""
    rows = await session.execute(
        select(Person.public_id, Person.full_name, Person.username, Person.role, Person.active)
    )
    people = [
        Pickable(r.public_id, r.full_name or r.username or r.public_id, r.role, r.active)
        for r in rows
    ]
    return sorted(people, key=lambda p: (p.role != "worker", not p.active, p.name.lower()))


async def standing(session: AsyncSession, public_id: str) -> Standing | None:
    """What the copy of people says of someone (the pages honour it over the sign-in)."""
    person = await session.scalar(select(Person).where(Person.public_id == public_id))
    if person is None:
        return None
    return Standing(
        person.role, stamp_time(person.role_stamp), person.active, stamp_time(person.active_stamp)
    )


async def active_workers(uow: UnitOfWork) -> list[str]:
    """Public ids of everyone who may get a task now (bounded by the staff, not tasks)."""
    query = (
        select(Person.public_id)
        .where(Person.role == WORKER, Person.active.is_(True))
        .order_by(Person.id)
    )
    return list((await uow.session.scalars(query)).all())


_RANDOM_ACTIVE_WORKER = (
    select(Person.public_id)
    .where(Person.role == WORKER, Person.active.is_(True))
    .order_by(func.random())
    .limit(1)
)


async def random_active_worker(uow: UnitOfWork) -> str | None:
    """One active worker drawn uniformly at random by the database, or None."""
    connection = await uow.session.connection()
    return (await connection.execute(_RANDOM_ACTIVE_WORKER)).scalar()
