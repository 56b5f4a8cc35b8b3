"""A working day on a production topology, through the public HTTP API only: the people,
the tasks they create, shuffle and complete, spread over every process of tasks and
billing. Used by the whole-system flow and by the crash tests (``tests/e2e/books.py``
checks what the services made of it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx

from tests.e2e.books import wait_until_everyone_is_known
from tests.e2e.production import Api, Production, gather_limited, start_all

WORKERS = 6
STAFF = {"admin": "admin", "manager": "manager", "accountant": "accountant"}
PEOPLE = {**STAFF, **{f"popug{n}": "worker" for n in range(1, WORKERS + 1)}}


class Flow:
    """The day's work, and what the tasks service answered while it was done."""

    def __init__(self, topology: Production, api: Api, rng: random.Random) -> None:
        self.topology = topology
        self.api = api
        self.rng = rng
        self.tasks_at = topology.urls("tasks")
        self.billing_at = topology.urls("billing")
        self.people: dict[str, dict[str, Any]] = {}  # username -> person JSON
        self.tasks: dict[str, dict[str, Any]] = {}  # public_id -> task JSON at creation
        self.done_by: dict[str, str] = {}  # task public_id -> worker's public_id
        self.shuffles: dict[str, int] = {}  # shuffle_id -> reassigned
        self._tasks_turn = itertools.cycle(self.tasks_at)
        self._billing_turn = itertools.cycle(self.billing_at)

    def tasks_url(self) -> str:
        """The tasks processes in turn."""
        return next(self._tasks_turn)

    def billing_url(self) -> str:
        """The billing processes in turn."""
        return next(self._billing_turn)

    @property
    def workers(self) -> dict[str, str]:
        """public_id -> username of every worker."""
        return {p["public_id"]: u for u, p in self.people.items() if p["role"] == "worker"}

    @property
    def open_tasks(self) -> list[str]:
        return [t for t in self.tasks if t not in self.done_by]

    @property
    def assignments(self) -> int:
        """Assignments the flow caused, as the tasks service reported them."""
        return len(self.tasks) + sum(self.shuffles.values())

    async def create_tasks(self, count: int) -> None:
        creators = sorted(self.people)  # anyone may create a task (T3)

        async def create(n: int) -> None:
            body: dict[str, Any] = {
                "title": f"Teach popug {n} to whistle",
                "description": f"Task {n} of the production flow.",
            }
            if n % 3:
                body["jira_id"] = f"POPUG-{1000 + n}"
            task = await self.api.json(
                self.rng.choice(creators),
                "POST",
                self.tasks_url(),
                "/api/tasks",
                json=body,
                expect=(201,),
            )
            assert task["status"] == "open"
            assert task["jira_id"] == body.get("jira_id")
            assert task["assignee_public_id"] in self.workers, task
            self.tasks[task["public_id"]] = task

        first = len(self.tasks)
        await gather_limited(create(first + i) for i in range(count))

    async def shuffle(self, username: str, url: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.api.json(username, "POST", url, "/api/tasks/shuffle")
        self.shuffles[result["shuffle_id"]] = int(result["reassigned"])
        return result

    async def assignee(self, public_id: str) -> str:
        task = await self.api.json("admin", "GET", self.tasks_url(), f"/api/tasks/{public_id}")
        return str(task["assignee_public_id"])

    async def complete(self, public_ids: Iterable[str]) -> None:
        """Each task completed by its assignee (T6), at either tasks process."""

        async def complete_one(public_id: str) -> None:
            assignee = await self.assignee(public_id)
            task = await self.api.json(
                self.workers[assignee],
                "POST",
                self.tasks_url(),
                f"/api/tasks/{public_id}/complete",
            )
            assert task["status"] == "done" and task["assignee_public_id"] == assignee
            self.done_by[public_id] = assignee

        await gather_limited(complete_one(t) for t in public_ids)

    async def work(self, stop: asyncio.Event, per_round: int = 4) -> int:
        """Rounds of work until ``stop`` is set: ``per_round`` tasks created, every third
        round a shuffle, then one fewer open tasks completed by their assignees (so the
        open ones a shuffle moves stay few). A steady stream of events for a crash to fall
        into; returns the rounds done. The steps of a round follow each other: a
        completion never races a shuffle of its task."""
        rounds = 0
        while not stop.is_set():
            await self.create_tasks(per_round)
            if rounds % 3 == 2:
                await self.shuffle(self.rng.choice(["admin", "manager"]), self.tasks_url())
            still_open = self.open_tasks
            await self.complete(self.rng.sample(still_open, min(per_round - 1, len(still_open))))
            rounds += 1
        return rounds


# Idle connections are dropped before uvicorn's keep-alive timeout (5 s) would close them
# under a request being sent ("Server disconnected without sending a response").
HTTP_LIMITS = httpx.Limits(keepalive_expiry=2.0)


@contextlib.asynccontextmanager
async def staffed(topology: Production, rng: random.Random) -> AsyncIterator[Flow]:
    """The people created (``ates users create``: three staff, six workers), every
    process started (:func:`start_all`) and healthy, and every person known to billing
    and to the tasks service; then the day can begin."""
    await gather_limited((topology.create_person(u, r) for u, r in PEOPLE.items()), limit=3)
    start_all(topology)
    await topology.wait_healthy()
    async with httpx.AsyncClient(timeout=30, limits=HTTP_LIMITS) as http:
        api = Api(topology, http)
        flow = Flow(topology, api, rng)
        auth = topology.url("auth")
        flow.people = {p["username"]: p for p in await api.json("admin", "GET", auth, "/api/users")}
        assert {u: p["role"] for u, p in flow.people.items()} == PEOPLE
        await wait_until_everyone_is_known(flow)
        yield flow
