"""The notifications service's page (T7, B7): "My notifications", the email, Slack and
SMS messages sent to the person signed in, newest first; admins see everyone's.

A notice is shown once it was sent, as it was sent (the same words ``messages_for``
printed), so the page never promises a message nobody got.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from ates.platform.dates import format_day
from ates.platform.dependencies import RuntimeDep
from ates.platform.pages import PageUser
from ates.platform.params import is_uuid
from ates.platform.web import render
from ates.services.notifications.models import Notice, Person, TaskCopy
from ates.services.notifications.sender import messages_for

router = APIRouter(include_in_schema=False)

PAGE = 50


@router.get("/", response_class=HTMLResponse)
async def my_notifications(
    request: Request,
    user: PageUser,
    runtime: RuntimeDep,
    page: Annotated[int, Query(ge=1, le=2**31 - 1)] = 1,
    person: str = "",
) -> HTMLResponse:
    everyone = user.has_role("admin")
    # an admin may narrow the list to one person; anyone else sees their own only
    whose = (person if is_uuid(person) else None) if everyone else str(user.public_id)
    sent = Notice.sent_at.is_not(None)
    where = [sent] if whose is None else [sent, Notice.person_public_id == whose]
    async with runtime.db.reader() as session:
        total = int(
            await session.scalar(select(func.count()).select_from(Notice).where(*where)) or 0
        )
        rows = (
            await session.execute(
                select(Notice, Person, TaskCopy)
                .outerjoin(Person, Person.public_id == Notice.person_public_id)
                .outerjoin(TaskCopy, TaskCopy.public_id == Notice.task_public_id)
                .where(*where)
                .order_by(Notice.sent_at.desc(), Notice.id.desc())
                .limit(PAGE)
                .offset((page - 1) * PAGE)
            )
        ).all()
        names = await _names(session) if everyone else {}
    notices: list[dict[str, Any]] = [
        {
            "notice": notice,
            "to": (person_row.full_name or person_row.username) if person_row else None,
            "messages": messages_for(notice, person_row, task, show_day=format_day),
        }
        for notice, person_row, task in rows
    ]
    pages = max(1, -(-total // PAGE))
    return render(
        request,
        "notifications.html",
        user=user,
        everyone=everyone,
        notices=notices,
        total=total,
        page=min(page, pages),
        pages=pages,
        person=whose or "",
        names=names,
    )


async def _names(session: Any) -> list[tuple[str, str]]:
    rows = await session.execute(select(Person.public_id, Person.full_name, Person.username))
    named = [(r.public_id, r.full_name or r.username or r.public_id) for r in rows]
    return sorted(named, key=lambda pair: pair[1].lower())
