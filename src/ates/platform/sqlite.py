"""SQLite for an asyncio service without a thread hop per statement.

SQLAlchemy's ``aiosqlite`` driver sends every statement, fetch and cursor through a queue
to a connection thread and back: four hand-offs per statement, each a future, a queue
and a loop wake-up. A profile of billing under load spent 48 % of its main thread there
and 4 % in our own code (docs/benchmarks.md). SQLite answers a statement of ours in
microseconds, from the page cache, so the hand-off cost more than the work.

This dialect is the standard ``pysqlite`` one (stdlib ``sqlite3``) declared asynchronous,
so ``create_async_engine`` accepts it: statements run directly on the event loop's thread,
inside SQLAlchemy's greenlet, with no hop at all. The one call that waits on the disk is
``COMMIT`` (WAL with ``synchronous=FULL`` fsyncs there); it is the one hop left: it runs
on a thread of the database's own, so a slow disk stalls that transaction and not the
loop. One hand-off per transaction instead of dozens; the same durability.

Writers of one process still take turns (``Database.write_turn``); a statement holds the
loop for as long as SQLite needs, which is why long jobs (a shuffle) work in batches.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.url import URL
from sqlalchemy.util.concurrency import await_

DRIVER = "sqlite+ates"

# Commits of every database of the process wait on their fsync here, one at a time per
# file in practice (SQLite has one writer), off the event loop's thread.
_committer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-commit")


async def _at_once() -> None:
    """An awaitable that is done at once. SQLAlchemy's ``AsyncConnection.execute``
    checks that the driver awaited something (to catch synchronous drivers by mistake);
    awaiting this costs a greenlet switch, not a trip through the event loop."""


class Cursor(sqlite3.Cursor):
    """A ``sqlite3`` cursor as SQLAlchemy's asyncio layer expects one."""

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        await_(_at_once())
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Cursor:
        await_(_at_once())
        return super().executemany(sql, seq_of_parameters)

    async def _async_soft_close(self) -> None:
        """Asyncio drivers close here once their rows are buffered; rows of a sqlite3
        cursor are read on demand, so it stays open until the result is consumed."""


class Connection:
    """A ``sqlite3`` connection whose ``commit`` waits on a worker thread.

    Everything else is the connection itself. ``check_same_thread=False`` is safe here:
    the loop thread never touches the connection while its commit runs elsewhere
    (SQLAlchemy awaits the commit before the next statement)."""

    __slots__ = ("_raw",)
    _raw: sqlite3.Connection

    def __init__(self, raw: sqlite3.Connection) -> None:
        object.__setattr__(self, "_raw", raw)

    def cursor(self) -> Cursor:
        return self._raw.cursor(Cursor)

    def commit(self) -> None:
        loop = asyncio.get_running_loop()
        await_(loop.run_in_executor(_committer, self._raw.commit))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._raw, name, value)


class _Dbapi:
    """``sqlite3`` as a DBAPI module whose ``connect`` returns :class:`Connection`."""

    def __init__(self) -> None:
        self.__dict__.update(
            {
                name: getattr(sqlite3, name)
                for name in dir(sqlite3)
                if not name.startswith("_") and name != "connect"
            }
        )

    def connect(self, *args: Any, **kwargs: Any) -> Connection:
        kwargs["check_same_thread"] = False
        return Connection(sqlite3.connect(*args, **kwargs))


class SQLiteDialect_ates(SQLiteDialect_pysqlite):  # SQLAlchemy's naming
    driver = "ates"
    is_async = True
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return _Dbapi()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool

    def get_driver_connection(self, connection: Any) -> Any:
        return connection


registry.register("sqlite.ates", __name__, "SQLiteDialect_ates")


def with_driver(url: URL) -> URL:
    """Any ``sqlite[+driver]://`` URL on this module's driver."""
    return url.set(drivername=DRIVER)
