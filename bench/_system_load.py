"""The workload: task lifecycles driven through the public API, closed and open loop, the
dashboards asked for meanwhile, and the shuffle's seed and button.

A lifecycle is the manager's ``POST /api/tasks`` (the answer names the assignee) followed
by that worker's ``POST /api/tasks/{id}/complete``. Times are ``time.perf_counter()``,
the clock the broker tap stamps arrivals with.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from _system_client import Api, Crew
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

Advance = Callable[[], None]


@dataclass(slots=True)
class Lifecycle:
    task: str
    assignee: str
    started: float  # when it was due (open loop) or sent (closed loop)
    created: float  # 201 of the create received
    completed: float  # 200 of the completion received

    @property
    def seconds(self) -> float:
        return self.completed - self.started


async def lifecycle(api: Api, crew: Crew, name: str, due: float | None = None) -> Lifecycle:
    started = time.perf_counter() if due is None else due
    task = await api.json(
        crew.manager,
        "POST",
        "tasks",
        "/api/tasks",
        expect=(201,),
        json={"title": f"Bench task {name}", "jira_id": f"BENCH-{name}", "description": "bench"},
    )
    created = time.perf_counter()
    assignee = crew.assignee(str(task["assignee_public_id"]))
    await api.call(assignee, "POST", "tasks", f"/api/tasks/{task['public_id']}/complete")
    return Lifecycle(
        str(task["public_id"]), assignee.public_id, started, created, time.perf_counter()
    )


async def closed_loop(
    api: Api, crew: Crew, count: int, in_flight: int, advance: Advance
) -> list[Lifecycle]:
    """``count`` lifecycles, ``in_flight`` at a time, each runner starting its next one
    as soon as its last one is answered."""
    numbers = iter(range(count))
    done: list[Lifecycle] = []

    async def runner() -> None:
        for i in numbers:
            done.append(await lifecycle(api, crew, f"c{i}"))
            advance()

    await asyncio.gather(*(runner() for _ in range(in_flight)))
    return done


@dataclass
class OpenLoop:
    rate: float
    seconds: float
    lifecycles: list[Lifecycle]
    window_start: float
    window_end: float
    worst_launch_slip: float  # how late the most late launch was (a busy load generator)


async def open_loop(
    api: Api, crew: Crew, rate: float, seconds: float, tag: str, advance: Advance
) -> OpenLoop:
    """Launch a lifecycle every ``1 / rate`` seconds for ``seconds``, whether or not the
    earlier ones were answered."""
    count = max(1, round(rate * seconds))
    start = time.perf_counter()
    running: list[asyncio.Task[Lifecycle]] = []
    slip = 0.0
    for i in range(count):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        slip = max(slip, time.perf_counter() - due)
        launched = asyncio.create_task(lifecycle(api, crew, f"{tag}-{i}", due))
        launched.add_done_callback(lambda _: advance())
        running.append(launched)
    end = start + count / rate
    await asyncio.sleep(max(0.0, end - time.perf_counter()))
    return OpenLoop(rate, seconds, list(await asyncio.gather(*running)), start, end, slip)


@dataclass
class DashboardLoad:
    """``GET /api/dashboard`` of billing and analytics as admin, ``per_second`` times a
    second each, on a timer (a slow answer does not delay the next request)."""

    api: Api
    crew: Crew
    per_second: float
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"billing": [], "analytics": []}
    )
    _task: asyncio.Task[None] | None = None

    async def _one(self, service: str) -> None:
        sent = time.perf_counter()
        await self.api.call(self.crew.admin, "GET", service, "/api/dashboard")
        self.latencies[service].append(time.perf_counter() - sent)

    async def _run(self) -> None:
        pending: set[asyncio.Task[None]] = set()
        interval = 1 / (2 * self.per_second)
        start = time.perf_counter()
        try:
            for i in itertools.count():
                wait = start + i * interval - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                one = asyncio.create_task(self._one(("billing", "analytics")[i % 2]))
                pending.add(one)
                one.add_done_callback(pending.discard)
        finally:
            if pending:
                await asyncio.gather(*pending)

    def start(self) -> None:
        if self.per_second > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="bench-dashboards")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


# --- the shuffle ----------------------------------------------------------------------------


@dataclass
class ShuffleSeed:
    """Open tasks and active workers written straight into the tasks database before its
    service starts, as ``bench/tasks_bench.py`` does (their creation events are no part
    of the measurement; billing prices each task at its first assignment)."""

    tasks: int
    workers: int
    task_ids: set[str] = field(default_factory=set)

    async def __call__(self, database_url: str) -> None:
        from ates.services.tasks.models import Person, Task

        workers = [str(uuid.uuid4()) for _ in range(self.workers)]
        engine = create_async_engine(database_url)
        now = datetime.now(UTC)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    insert(Person),
                    [
                        {"public_id": w, "username": f"seeded{i}", "role": "worker", "active": True}
                        for i, w in enumerate(workers)
                    ],
                )
            for start in range(0, self.tasks, 10_000):
                rows = []
                for i in range(start, min(start + 10_000, self.tasks)):
                    public_id = str(uuid.uuid4())
                    self.task_ids.add(public_id)
                    rows.append(
                        {
                            "public_id": public_id,
                            "title": f"Seeded task {i}",
                            "description": "",
                            "status": "open",
                            "assignee_public_id": workers[i % len(workers)],
                            "created_at": now,
                        }
                    )
                async with engine.begin() as connection:
                    await connection.execute(insert(Task), rows)
        finally:
            await engine.dispose()
