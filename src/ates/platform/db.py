"""Database plumbing: one async engine per service database, SQLite or PostgreSQL.

SQLite is configured for a multi-task process: WAL, a busy timeout, full fsync, and
``BEGIN IMMEDIATE`` for write transactions so two writers queue up instead of failing
half-way with "database is locked". Read-only work uses :attr:`Database.reader`, which
starts deferred transactions that never block writers. Statements run on the event
loop's thread and only the commit waits on a worker thread (``ates.platform.sqlite``),
whatever driver a ``sqlite…://`` URL names.

PostgreSQL (``postgresql+asyncpg://``) runs at its default READ COMMITTED: write
transactions do *not* exclude each other as they do on SQLite, and several processes may
share one database. Code that reads, decides and writes must therefore say what it
relies on: a unique constraint (the inbox, a price per task), an atomic ``UPDATE … SET x
= x + :delta``, ``SELECT … FOR UPDATE [SKIP LOCKED]`` (closing a day locks the billing
books' row, a shuffle the tasks it moves), or a transaction-scoped advisory lock on
:func:`lock_key` of a name (one service's consumers, its migrations).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util.concurrency import await_

from ates.platform import sqlite
from ates.platform.groupcommit import GroupCommitter

READ_ONLY = "ates_read_only"
BUSY_SECONDS = 30.0  # how long a writer waits for another connection's write transaction

# Which databases' write turn the current task holds (write_turn is re-entrant per task).
_holding: ContextVar[frozenset[int]] = ContextVar("ates_write_turns", default=frozenset())


class Database:
    """An engine, its session factories and the outbox wake-up signal of one service."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            self.url = sqlite.with_driver(self.url)
        if self.is_sqlite and self.url.database not in (None, "", ":memory:"):
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._reader = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        self.outbox_signal = asyncio.Event()
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # SQLite: units of work that arrive together share a transaction (groupcommit)
        self.group_commit = (
            GroupCommitter(self._write_lock, self._begin_write) if self._write_lock else None
        )

    async def _begin_write(self) -> AsyncSession:
        session = self.sessions()
        try:
            await session.begin()
        except BaseException:
            await session.close()
            raise
        return session

    def writing_here(self) -> bool:
        """Whether the current task holds this database's write turn (or is inside a
        group's transaction): a unit of work nested in it joins that transaction."""
        return id(self) in _holding.get()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Mark the current task as writing (the lock is held by someone on its behalf)."""
        token = _holding.set(_holding.get() | {id(self)})
        try:
            yield
        finally:
            _holding.reset(token)

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """Wait for this process's turn to write (SQLite only; a no-op on PostgreSQL).

        SQLite has one writer at a time. Without this, the tasks of one process that want
        to write would all sleep in SQLite's busy handler, which serves no one in order and
        can miss the short gap between two transactions of a long job (a shuffle's
        batches): a request could wait seconds. ``asyncio.Lock`` queues them first come,
        first served; other processes (the CLI) still meet the busy timeout. Re-entrant
        within one task."""
        lock = self._write_lock
        if lock is None or id(self) in _holding.get():
            yield
            return
        async with lock:
            with self.writing():
                yield

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for queries only; it is rolled back at the end."""
        async with self._reader() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock name (the same in every process)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")  # while connecting (WAL needs a lock)
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Statements run on the event loop's thread (ates.platform.sqlite): SQLite's busy
        # handler would sleep there and stop every other task of the process, the one
        # holding the lock included when it lives in the same process. Waiting for the
        # write lock is done below, asynchronously; in WAL nothing else waits.
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            _begin_immediate(connection)


def _begin_immediate(connection: Any) -> None:
    """``BEGIN IMMEDIATE``, waiting for another connection's write transaction to end (up
    to :data:`BUSY_SECONDS`) without blocking the event loop (inside SQLAlchemy's greenlet,
    ``await_`` yields to it)."""
    deadline = time.monotonic() + BUSY_SECONDS
    delay = 0.001
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as error:
            if "locked" not in str(error.orig) or time.monotonic() > deadline:
                raise
        await_(asyncio.sleep(delay))
        delay = min(delay * 2, 0.05)
