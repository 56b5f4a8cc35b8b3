"""Sign-in sessions of the pages, known to the server and not only to the cookie.

The cookie (Starlette's signed session) carries who is signed in and a random session
id; the service's database keeps the SHA-256 of that id with the time the session must
end. A session is good only while its row exists and has not expired, so:

- it ends ``ABSOLUTE_LIFETIME`` after sign-in however busy it is (OWASP ASVS 5 §7.3),
  besides the cookie's own ``IDLE_SECONDS`` after the last request;
- logging out deletes the row: a copy of the cookie taken before is worth nothing;
- a dashboard checks the person against its own copy of people (kept from auth's account
  events) on every request: a role changed or an account deactivated after the sign-in
  counts at once, whatever the cookie says (:func:`current`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.runtime import Runtime
from ates.platform.security import Principal
from ates.platform.sqltypes import UtcDateTime
from ates.platform.standing import Standing, StandingOf

IDLE_SECONDS = 8 * 3600
ABSOLUTE_LIFETIME = timedelta(hours=12)
SESSION_ID = "sid"

metadata = sa.MetaData()

page_sessions = sa.Table(
    "page_sessions",
    metadata,
    sa.Column("id_digest", sa.String(64), primary_key=True),
    sa.Column("person_public_id", sa.String(36), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Index("ix_page_sessions_expires_at", "expires_at"),
    sa.Index("ix_page_sessions_person", "person_public_id"),
)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


async def open_session(
    runtime: Runtime, person_public_id: str, lifetime: timedelta = ABSOLUTE_LIFETIME
) -> str:
    """Record a new session (and forget expired ones); its id, for the cookie only."""
    session_id = secrets.token_urlsafe(32)
    now = _now()
    async with runtime.uow() as uow:
        await uow.session.execute(sa.delete(page_sessions).where(page_sessions.c.expires_at < now))
        await uow.session.execute(
            sa.insert(page_sessions).values(
                id_digest=_digest(session_id),
                person_public_id=person_public_id,
                started_at=now,
                expires_at=now + lifetime,
            )
        )
        await uow.commit()
    return session_id


async def start(
    request: Request,
    runtime: Runtime,
    person_public_id: str,
    lifetime: timedelta = ABSOLUTE_LIFETIME,
) -> None:
    """A new session at sign-in: nothing of the old cookie is carried over."""
    session_id = await open_session(runtime, person_public_id, lifetime)
    request.session.clear()
    request.session[SESSION_ID] = session_id


async def end(request: Request, runtime: Runtime) -> None:
    """Log out: the row goes, and with it every copy of the cookie."""
    session_id = request.session.get(SESSION_ID)
    request.session.clear()
    if isinstance(session_id, str):
        async with runtime.uow() as uow:
            await uow.session.execute(
                sa.delete(page_sessions).where(page_sessions.c.id_digest == _digest(session_id))
            )
            await uow.commit()


async def started_at(
    session: AsyncSession, request: Request, person_public_id: str
) -> datetime | None:
    """When the cookie's session started, if it is still good and is this person's. A
    good session's cookie is sent again, so its idle timeout counts from this request."""
    session_id = request.session.get(SESSION_ID)
    if not isinstance(session_id, str):
        return None
    started: datetime | None = await session.scalar(
        sa.select(page_sessions.c.started_at).where(
            page_sessions.c.id_digest == _digest(session_id),
            page_sessions.c.person_public_id == person_public_id,
            page_sessions.c.expires_at > _now(),
        )
    )
    if started is not None:
        request.session[SESSION_ID] = session_id  # marks it changed: a fresh cookie
    return started


def as_of(principal: Principal, standing: Standing | None, since: datetime) -> Principal | None:
    """The person as the service knows them now: None if deactivated after ``since``
    (the sign-in), with their newer role if it changed after it. A fact older than the
    sign-in is what the sign-in already knew (the copy may lag behind auth)."""
    if standing is None:
        return principal
    if not standing.active and (standing.active_at is None or standing.active_at > since):
        return None
    if (
        standing.role is not None
        and standing.role != principal.role
        and (standing.role_at is None or standing.role_at > since)
    ):
        return replace(principal, role=standing.role)
    return principal


async def current(
    request: Request, runtime: Runtime, principal: Principal, standing_of: StandingOf | None
) -> Principal | None:
    """The signed-in person if the session is good, as the service knows them now; a
    session that is not good any more is ended."""
    async with runtime.db.reader() as session:
        since = await started_at(session, request, str(principal.public_id))
        standing = None
        if since is not None and standing_of is not None:
            standing = await standing_of(session, str(principal.public_id))
    if since is None:  # ended, expired or never known: nothing left to delete
        request.session.clear()
        return None
    now_known = as_of(principal, standing, since)
    if now_known is None:
        await end(request, runtime)
    return now_known
