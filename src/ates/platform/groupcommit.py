"""Group commit: units of work that arrive together share one SQLite transaction.

SQLite has one writer at a time, so the writes of one process take turns anyway
(``Database.write_turn``). Taking turns inside one transaction instead of one after
another saves, for every unit of work but the first, a BEGIN, a connection checkout, a
COMMIT with its hand-off to the commit thread and its fsync: under load that was a
quarter of the tasks service's CPU per request (profile in docs/benchmarks.md).

A *group* is opened by the first unit of work that wants to write; every unit of work
that arrives while the group is open joins it. Members run one at a time, each inside a
savepoint of its own, so one that fails or gives up rolls back alone. When the last
member leaves, the group commits. A member's ``commit()`` returns only once the group
committed, so nothing is answered before it is durable, exactly as before; if the group's
commit fails, every member's ``commit()`` raises. A group takes at most ``max_members``,
so that a steady stream of requests cannot keep one open (and its first member waiting)
for ever. PostgreSQL, where writers do not exclude each other, commits each unit of
work on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

log = structlog.get_logger(__name__)


class CommitGroup:
    """One open write transaction and the units of work inside it."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.session: AsyncSession | None = None
        self.started: asyncio.Future[None] = loop.create_future()
        self.durable: asyncio.Future[None] = loop.create_future()
        self.turn = asyncio.Lock()  # members one at a time
        self.members = 0  # joined and not yet left
        self.joined = 0
        self.open = True  # still taking members
        self.starter: asyncio.Task[None] | None = None
        self.finisher: asyncio.Task[None] | None = None


class GroupCommitter:
    """The group commit of one SQLite database (see the module's docstring)."""

    def __init__(
        self,
        write_lock: asyncio.Lock,
        begin: Callable[[], Awaitable[AsyncSession]],
        *,
        max_members: int = 32,
    ) -> None:
        self._write_lock = write_lock
        self._begin = begin
        self.max_members = max_members
        self._group: CommitGroup | None = None

    async def join(self) -> CommitGroup:
        """The open group (a new one if none is open), once its transaction has begun."""
        group = self._group
        if group is None or not group.open:
            group = self._group = CommitGroup()
            group.starter = asyncio.create_task(self._start(group))
        group.members += 1
        group.joined += 1
        if group.joined >= self.max_members:
            group.open = False
        try:
            await asyncio.shield(group.started)
        except BaseException:
            await self.leave(group)
            raise
        return group

    async def _start(self, group: CommitGroup) -> None:
        try:
            await self._write_lock.acquire()
        except BaseException as error:  # cancelled while waiting (the process stops)
            group.open = False
            group.started.set_exception(error)
            group.started.exception()
            return
        try:
            group.session = await self._begin()
        except BaseException as error:
            self._write_lock.release()
            group.open = False
            group.started.set_exception(error)
            group.started.exception()  # retrieved: the members waiting see it themselves
            return
        group.started.set_result(None)
        if group.members == 0:  # every member gave up while the transaction began
            await self._finish(group)

    async def leave(self, group: CommitGroup) -> None:
        """A member is done (committed its part or gave up); the last one commits."""
        group.members -= 1
        if group.members > 0:
            return
        group.open = False
        if self._group is group:
            self._group = None
        if group.started.done() and group.started.exception() is None:
            # A task of its own: the commit completes even if this member is cancelled.
            group.finisher = asyncio.create_task(self._finish(group))
            await asyncio.shield(group.finisher)
        # else: not begun yet (the starter finishes it) or never began (nothing held)

    async def _finish(self, group: CommitGroup) -> None:
        session = group.session
        assert session is not None
        try:
            await session.commit()
        except BaseException as error:
            log.warning("db.group_commit_failed", error=repr(error))
            group.durable.set_exception(error)
            group.durable.exception()  # retrieved: members that wait see it themselves
        else:
            group.durable.set_result(None)
        finally:
            try:
                await session.close()
            finally:
                self._write_lock.release()
