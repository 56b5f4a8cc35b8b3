"""The unit of work: one database transaction and the events it produces.

Use cases and event handlers receive a ``UnitOfWork``. They change state through
``uow.session`` and announce what happened with ``uow.emit(payload)``, a typed payload
(``ates.schemas.<domain>``) that names its event and version. The event is validated at
once (an invalid event raises before anything is written) and stored in the outbox *in
the same transaction*. Only the unit of work commits.

Outbox rows are kept in memory and written by one multi-row INSERT just before the commit:
a consumer batch or a request that emits many events pays one statement, not one each.
A savepoint that rolls back forgets the events emitted inside it.

On SQLite, units of work that arrive together share one transaction (group commit, see
``ates.platform.groupcommit``): each runs in a savepoint of its own, and ``commit()``
returns once the shared transaction is durable.

Every event carries the trace it was caused by (``ates.platform.tracing``): by default the
one the unit of work was opened under (a request's), ``uow.trace``; a handler that applies
a run of events at once names the event that caused each emit (``caused_by=event``), and
the emitted event continues that event's trace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

from ates.platform.db import Database
from ates.platform.events import Event, Registry, default_registry
from ates.platform.events.payload import Payload
from ates.platform.groupcommit import CommitGroup, GroupCommitter
from ates.platform.tables import outbox
from ates.platform.tracing import current_traceparent

_INSERT_OUTBOX = insert(outbox)


class UnitOfWork:
    def __init__(self, db: Database, producer: str, registry: Registry | None = None) -> None:
        self._db = db
        self.producer = producer
        self.registry = registry or default_registry()
        self._session: AsyncSession | None = None
        self.emitted: list[Event] = []
        self._outbox_rows: list[dict[str, Any]] = []
        # as a member of a commit group (SQLite)
        self._group: CommitGroup | None = None
        self._part: AsyncSessionTransaction | None = None  # our savepoint in the group
        self._has_turn = False
        self._writing: AbstractContextManager[None] | None = None
        self._left = False
        # The trace of what this unit of work does (a request's, or None), and for a
        # consumer with tracing on, the context each consumed event is processed under
        # (event id -> traceparent): what ``caused_by`` continues.
        self.trace: str | None = current_traceparent()
        self.causes: dict[Any, str] = {}

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        committer = self._db.group_commit
        if committer is not None and not self._db.writing_here():
            await self._join(committer)
            return self
        self._turn = self._db.write_turn()
        await self._turn.__aenter__()
        try:
            self._session = self._db.sessions()
            await self._session.begin()
        except BaseException:
            await self._turn.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._group is not None:
            if not self._left:  # gave up before commit(): our part rolls back alone
                try:
                    if self._part is not None and self._part.is_active:
                        await self._part.rollback()
                finally:
                    await self._leave()
            return
        # close() rolls back an uncommitted transaction without expiring what was loaded,
        # so read results stay usable after the block.
        session, self._session = self.session, None
        try:
            await session.close()
        finally:
            await self._turn.__aexit__(None, None, None)

    # --- as a member of a commit group (SQLite) ----------------------------------------

    async def _join(self, committer: GroupCommitter) -> None:
        group = await committer.join()  # a member from here on: _leave() must follow
        self._group = group
        try:
            await group.turn.acquire()
            self._has_turn = True
            self._writing = self._db.writing()  # writes nested in this task: no new turn
            self._writing.__enter__()
            assert group.session is not None
            self._session = group.session
            self._part = await group.session.begin_nested()
        except BaseException:
            await self._leave()
            raise

    async def _leave(self) -> None:
        group, committer = self._group, self._db.group_commit
        assert group is not None and committer is not None
        self._left = True
        self._session = None
        if self._writing is not None:
            self._writing.__exit__(None, None, None)
            self._writing = None
        if self._has_turn:
            group.turn.release()
            self._has_turn = False
        await committer.leave(group)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A part of the transaction that an error undoes alone (its writes and the
        events it emitted); the rest of the unit of work goes on. The error is
        re-raised."""
        emitted, rows = len(self.emitted), len(self._outbox_rows)
        nested = await self.session.begin_nested()
        try:
            yield
        except BaseException:
            await nested.rollback()
            del self.emitted[emitted:]
            del self._outbox_rows[rows:]
            raise
        await nested.commit()

    async def emit(
        self,
        payload: Payload,
        *,
        trace: str | None = None,
        caused_by: Event | None = None,
    ) -> Event:
        """Validate the typed ``payload`` (its class names the event and version) and put
        the event in this transaction's outbox rows. Its trace: ``trace`` if given, else
        that of the event it was ``caused_by``, else the unit of work's."""
        return await self.emit_data(
            payload.event_name,
            payload.to_data(),
            version=payload.event_version,
            trace=trace,
            caused_by=caused_by,
        )

    async def emit_data(
        self,
        event_name: str,
        data: dict[str, Any],
        *,
        version: int | None = None,
        trace: str | None = None,
        caused_by: Event | None = None,
    ) -> Event:
        """:meth:`emit` of data as it travels (the newest version unless ``version`` is
        given), for what holds no payload class: tests that send invalid data on
        purpose, tools that pass on data they read. Services emit typed payloads."""
        if trace is None:
            trace = self.trace if caused_by is None else self.trace_of(caused_by)
        event = self._event(event_name, data, version=version, trace=trace)
        self._outbox_rows.append(self._outbox_row(event))
        self.emitted.append(event)
        return event

    def trace_of(self, cause: Event) -> str | None:
        """The trace an event caused by ``cause`` continues."""
        return self.causes.get(cause.event_id, cause.trace) if self.causes else cause.trace

    async def emit_many(self, payloads: Sequence[Payload]) -> int:
        """Bulk form of :meth:`emit` for large batches (one event time for all, the unit
        of work's trace)."""
        if not payloads:
            return 0
        now = datetime.now(UTC)
        trace = self.trace
        rows = [
            self._outbox_row(
                self._event(
                    payload.event_name,
                    payload.to_data(),
                    version=payload.event_version,
                    trace=trace,
                    event_time=now,
                )
            )
            for payload in payloads
        ]
        self._outbox_rows.extend(rows)
        return len(rows)

    def _event(
        self,
        event_name: str,
        data: dict[str, Any],
        *,
        version: int | None = None,
        trace: str | None = None,
        event_time: datetime | None = None,
    ) -> Event:
        version = version or self.registry.latest_version(event_name)
        self.registry.validate(event_name, version, data)  # raises before anything is written
        return Event(
            event_name=event_name,
            event_version=version,
            data=data,
            producer=self.producer,
            trace=trace,
            event_time=event_time or datetime.now(UTC),
        )

    def _outbox_row(self, event: Event) -> dict[str, Any]:
        return {
            "event_id": str(event.event_id),
            "domain": self.registry.domain_of(event.event_name),
            "event_name": event.event_name,
            "payload": event.to_json(),
            "created_at": event.event_time,
        }

    async def commit(self) -> None:
        rows, self._outbox_rows = self._outbox_rows, []
        if rows:
            connection = await self.session.connection()
            await connection.execute(_INSERT_OUTBOX, rows)
        group = self._group
        if group is None:
            await self.session.commit()
        else:
            assert self._part is not None
            await self._part.commit()  # our part is in; the group commits when all are
            await self._leave()
            await group.durable
        if rows:
            self._db.outbox_signal.set()
