"""The whole system in production mode: PostgreSQL, a broker (RabbitMQ, or Kafka), every
service its own process, two processes of each consuming service — tasks, billing,
analytics, notifications — sharing its queues or its partitions (issues 8 and 16;
docs/operations.md, "Whole-system flow").

One working day through the public HTTP API only, its requests spread over both
processes of tasks and billing: people (``ates users create``), tasks (some with a jira
id), a shuffle, completions, two shuffles at the same moment on the two tasks processes,
more tasks and completions, then today closed twice at the same moment on the two billing
processes. Afterwards every service must tell the same story (``tests/e2e/books.py``),
the close must have paid each worker in credit exactly once, and every process must stop
with exit code 0 on SIGTERM. The same test runs once on each broker.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.books import (
    analytics_agree,
    billing_applied_each_event_once,
    books_add_up,
    check_payouts,
    operator_sees_clean_books,
    stops_cleanly,
    today_of,
)
from tests.e2e.production import Production, TopologyBroker, gather_limited, production
from tests.e2e.workday import WORKERS, Flow, staffed

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(480)]

EARLY_TASKS = 12  # created before the shuffles
LATE_TASKS = 48  # created after them
EARLY_DONE = 4  # completed between the first shuffle and the two at once


async def test_a_working_day_with_two_processes_of_each_consuming_service(
    postgres_dsn: str, production_broker: TopologyBroker, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 32)  # who creates which task, what gets done (printed)
    report: dict[str, Any] = {"broker": production_broker.kind, "seed": seed}
    timings: dict[str, float] = {}
    started = time.monotonic()
    async with production(postgres_dsn, production_broker, tmp_path) as topology:
        try:
            await _run(topology, random.Random(seed), report, timings, started)
        except BaseException:
            # shown by pytest with the failure: what each process printed
            print(f"flow {report}\n{topology.output(tail=60)}")
            raise
    timings["total"] = time.monotonic() - started
    spent = {step: round(seconds, 1) for step, seconds in timings.items()}
    print(f"flow {report}, seconds: {spent}")


async def _run(
    topology: Production,
    rng: random.Random,
    report: dict[str, Any],
    timings: dict[str, float],
    started: float,
) -> None:
    async with staffed(topology, rng) as flow:
        assert [p.name for p in topology.processes] == [
            "auth-1",
            "tasks-1",
            "billing-1",
            "analytics-1",
            "notifications-1",
            "tasks-2",
            "billing-2",
            "analytics-2",
            "notifications-2",
        ]
        timings["people known"] = time.monotonic() - started
        await _the_days_work(flow)
        timings["work done"] = time.monotonic() - started

        # --- billing booked each assignment and completion once; analytics agrees --------
        today = await today_of(flow)
        books = await books_add_up(flow, today)
        timings["books settled"] = time.monotonic() - started
        assert 0 < books.in_debt < WORKERS, f"some should end in credit: {books.balances}"
        report.update(
            tasks=len(flow.tasks),
            assignments=len(books.expected),
            completed=len(flow.done_by),
            in_debt=books.in_debt,
            earnings_cents=books.earnings,
        )
        await billing_applied_each_event_once(topology, books.expected, len(flow.done_by))
        timings["checked"] = time.monotonic() - started

        # --- today closed twice at the same moment, once on each billing process -------
        path = f"/api/days/{today.isoformat()}/close"
        closes = await asyncio.gather(
            flow.api.json("accountant", "POST", flow.billing_at[0], path),
            flow.api.json("admin", "POST", flow.billing_at[1], path),
        )
        assert sorted(c["newly_closed"] for c in closes) == [False, True], closes
        due = {owner: b for owner, b in books.balances.items() if b > 0}
        for close in closes:
            assert {p["owner_public_id"]: p["amount_cents"] for p in close["payouts"]} == due
            assert len(close["payouts"]) == len(due)
        await check_payouts(flow, today, books.balances)
        report["payouts"] = len(due)
        await analytics_agree(flow, books)  # payouts are no earnings; debts stay debts
        timings["closed"] = time.monotonic() - started

    # --- the operator's view: the command line with the same environment ---------------
    again = await topology.ates("billing", "close-day", today.isoformat(), check=False)
    assert again.returncode == 0 and "already closed: nothing paid again" in again.stdout, (
        again.stdout + again.stderr
    )
    await operator_sees_clean_books(topology)
    await stops_cleanly(topology)


async def _the_days_work(flow: Flow) -> None:
    await flow.create_tasks(EARLY_TASKS)
    first = await flow.shuffle("manager", flow.tasks_at[1])
    assert first["reassigned"] == EARLY_TASKS  # every open task, none lost

    await flow.complete(flow.rng.sample(flow.open_tasks, EARLY_DONE))
    # a done task cannot be completed again, at the other process either (T6)
    done = next(iter(flow.done_by))
    for url in flow.tasks_at:
        await flow.api.call(
            flow.workers[flow.done_by[done]],
            "POST",
            url,
            f"/api/tasks/{done}/complete",
            expect=(409,),
        )

    # two shuffles at the same moment, one on each tasks process
    still_open = len(flow.open_tasks)
    both = await asyncio.gather(
        flow.shuffle("manager", flow.tasks_at[0]), flow.shuffle("admin", flow.tasks_at[1])
    )
    assert [s["reassigned"] for s in both] == [still_open, still_open], both

    await flow.create_tasks(LATE_TASKS)
    # Half the workers (those given the most new tasks) complete everything they hold,
    # the others nothing: some end the day in credit, some in debt.
    open_now = flow.open_tasks
    found = await gather_limited(flow.assignee(t) for t in open_now)
    holders = dict(zip(open_now, found, strict=True))
    late = Counter(holders[t] for t in list(flow.tasks)[EARLY_TASKS:])
    lucky = {w for w, _ in late.most_common(WORKERS // 2)}
    await flow.complete(t for t, holder in holders.items() if holder in lucky)
