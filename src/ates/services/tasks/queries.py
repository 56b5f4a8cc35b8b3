"""Reading tasks: one by id, or pages of a filtered list, newest first.

Pages are keyset-paginated on the task's integer id (``cursor`` is the last id of the
previous page), so every page costs the same however deep it is, and no page is
unbounded (``MAX_PAGE``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.sessions import Standing
from ates.services.tasks.models import Person, Task

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_CURSOR = 2**31 - 1  # task ids are int4 on PostgreSQL


@dataclass(frozen=True, slots=True)
class Page:
    tasks: list[Task]
    next_cursor: int | None  # pass as ``cursor`` to get the next page; None: last page


async def get_task(session: AsyncSession, public_id: str) -> Task | None:
    return await session.scalar(select(Task).where(Task.public_id == public_id))


async def list_tasks(
    session: AsyncSession,
    *,
    assignee: str | None = None,
    status: str | None = None,
    limit: int = DEFAULT_PAGE,
    cursor: int | None = None,
) -> Page:
    """Tasks newest first; ``assignee``/``status`` None means any."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Task).order_by(Task.id.desc()).limit(limit + 1)
    if assignee is not None:
        query = query.where(Task.assignee_public_id == assignee)
    if status is not None:
        query = query.where(Task.status == status)
    if cursor is not None:
        query = query.where(Task.id < cursor)
    found = list((await session.scalars(query)).all())
    more = len(found) > limit
    tasks = found[:limit]
    return Page(tasks, tasks[-1].id if more else None)


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


async def standing(session: AsyncSession, public_id: str) -> Standing | None:
    """What the copy of people says of someone (the pages honour it over the sign-in)."""
    person = await session.scalar(select(Person).where(Person.public_id == public_id))
    if person is None:
        return None
    return Standing(person.role, person.role_at, person.active, person.active_at)
