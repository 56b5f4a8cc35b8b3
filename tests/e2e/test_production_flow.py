"""The whole system in production mode: PostgreSQL, RabbitMQ, every service its own
process, two processes each of tasks and billing (issue 8; docs/operations.md,
"Whole-system flow").

One working day through the public HTTP API only, its requests spread over both
processes of tasks and billing: people (``ates users create``), tasks (some with a jira
id), a shuffle, completions, two shuffles at the same moment on the two tasks processes,
more tasks and completions, then today closed twice at the same moment on the two billing
processes. Afterwards every service must tell the same story:

- every ``TaskAssigned`` the tasks service produced (creations + each shuffle's
  ``reassigned``; one unbroken chain per task) is exactly one ``assign_fee`` in billing,
  on the right worker's account, at the task's one price; every completion one reward;
- billing's and analytics' management earnings for today are fees - rewards;
- the close paid each worker in credit exactly once, the balance, and carried debts over;
- ``ates billing verify`` is clean, no service holds a dead letter, every outbox is
  drained, and every process stops with exit code 0 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Iterable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ates.platform.money import format_cents
from tests.backends import postgres_dsn, rabbitmq_server
from tests.e2e.production import Api, Production, production, start_all
from tests.support import eventually

__all__ = ["postgres_dsn", "rabbitmq_server"]  # the fixtures this module's test uses

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.rabbitmq,
    pytest.mark.timeout(480),
]

T = TypeVar("T")

WORKERS = 6
EARLY_TASKS = 12  # created before the shuffles
LATE_TASKS = 48  # created after them
EARLY_DONE = 4  # completed between the first shuffle and the two at once
STAFF = {"admin": "admin", "manager": "manager", "accountant": "accountant"}
SETTLE_SECONDS = 90.0


async def gather_limited(jobs: Iterable[Awaitable[T]], limit: int = 6) -> list[T]:
    """Run ``jobs`` concurrently, at most ``limit`` at a time (two CPUs serve them all)."""
    gate = asyncio.Semaphore(limit)

    async def _one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return await asyncio.gather(*(_one(job) for job in jobs))


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


async def test_a_working_day_on_postgres_and_rabbitmq_with_two_processes_of_tasks_and_billing(
    postgres_dsn: str, rabbitmq_server: str, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 32)  # who creates which task, what gets done (printed)
    report: dict[str, Any] = {"seed": seed}
    timings: dict[str, float] = {}
    started = time.monotonic()
    async with production(postgres_dsn, rabbitmq_server, tmp_path) as topology:
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
    people = {**STAFF, **{f"popug{n}": "worker" for n in range(1, WORKERS + 1)}}
    await gather_limited((topology.create_person(u, r) for u, r in people.items()), limit=3)
    start_all(topology)
    assert [p.name for p in topology.processes] == [
        "auth-1",
        "tasks-1",
        "billing-1",
        "analytics-1",
        "notifications-1",
        "tasks-2",
        "billing-2",
    ]
    await topology.wait_healthy()
    timings["up"] = time.monotonic() - started

    # Idle connections are dropped before uvicorn's keep-alive timeout (5 s) would close
    # them under a request being sent ("Server disconnected without sending a response").
    limits = httpx.Limits(keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        api = Api(topology, http)
        flow = Flow(topology, api, rng)
        auth = topology.url("auth")
        flow.people = {p["username"]: p for p in await api.json("admin", "GET", auth, "/api/users")}
        assert {u: p["role"] for u, p in flow.people.items()} == people

        await _wait_until_everyone_is_known(flow)
        timings["people known"] = time.monotonic() - started

        # --- the day's work ------------------------------------------------------------
        await flow.create_tasks(EARLY_TASKS)
        first = await flow.shuffle("manager", flow.tasks_at[1])
        assert first["reassigned"] == EARLY_TASKS  # every open task, none lost

        await flow.complete(flow.rng.sample(flow.open_tasks, EARLY_DONE))
        # a done task cannot be completed again, at the other process either (T6)
        done = next(iter(flow.done_by))
        for url in flow.tasks_at:
            await api.call(
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
        # Half the workers (those given the most new tasks) complete everything they
        # hold, the others nothing: some end the day in credit, some in debt.
        open_now = flow.open_tasks
        found = await gather_limited(flow.assignee(t) for t in open_now)
        holders = dict(zip(open_now, found, strict=True))
        late = Counter(holders[t] for t in list(flow.tasks)[EARLY_TASKS:])
        lucky = {w for w, _ in late.most_common(WORKERS // 2)}
        await flow.complete(t for t, holder in holders.items() if holder in lucky)
        timings["work done"] = time.monotonic() - started

        # --- what the tasks service did ------------------------------------------------
        today = date.fromisoformat(
            (await api.json("accountant", "GET", flow.billing_url(), "/api/dashboard"))["date"]
        )
        expected = await _assignments_of_tasks(flow)

        # --- billing booked each of them once ------------------------------------------
        logs = await _settled_books(flow, today, expected)
        timings["books settled"] = time.monotonic() - started
        fees, rewards, balances, prices = await _check_books(flow, today, logs, expected)
        top = max(prices[t]["reward_cents"] for t in flow.done_by)

        board = await api.json(
            "accountant",
            "GET",
            flow.billing_url(),
            "/api/dashboard",
            params={"date": today.isoformat(), "days": 1},
        )
        assert board["management_earnings_cents"] == fees - rewards
        assert board["days"] == [
            {"date": today.isoformat(), "management_earnings_cents": fees - rewards}
        ]
        in_debt = sum(1 for b in balances.values() if b < 0)
        assert 0 < in_debt < WORKERS, f"the flow should leave some in credit: {balances}"
        report.update(
            tasks=len(flow.tasks),
            assignments=len(expected),
            completed=len(flow.done_by),
            in_debt=in_debt,
            earnings_cents=fees - rewards,
        )
        await _analytics_agree(flow, today, fees - rewards, in_debt, top)
        await _billing_applied_each_event_once(topology, expected, len(flow.done_by))
        timings["checked"] = time.monotonic() - started

        # --- today closed twice at the same moment, once on each billing process -------
        path = f"/api/days/{today.isoformat()}/close"
        closes = await asyncio.gather(
            api.json("accountant", "POST", flow.billing_at[0], path),
            api.json("admin", "POST", flow.billing_at[1], path),
        )
        assert sorted(c["newly_closed"] for c in closes) == [False, True], closes
        due = {owner: b for owner, b in balances.items() if b > 0}
        for close in closes:
            assert {p["owner_public_id"]: p["amount_cents"] for p in close["payouts"]} == due
            assert len(close["payouts"]) == len(due)
        await _check_payouts(flow, today, balances)
        report["payouts"] = len(due)
        await _analytics_agree(flow, today, fees - rewards, in_debt, top)
        timings["closed"] = time.monotonic() - started

    # --- the operator's view: the command line with the same environment ---------------
    results = await asyncio.gather(
        topology.ates("billing", "verify", check=False),
        topology.ates("billing", "close-day", today.isoformat(), check=False),
        *(topology.ates("dlq", "list", s, check=False) for s in topology.databases),
    )
    verify, again, *letters = results
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "books ok" in verify.stdout
    assert again.returncode == 0 and "already closed: nothing paid again" in again.stdout, (
        again.stdout + again.stderr
    )
    for service, listed in zip(topology.databases, letters, strict=True):
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert f"{service}: no pending dead letters" in listed.stdout, listed.stdout
    for service in topology.databases:
        rows = await topology.query(service, "SELECT consumer, event_name, error FROM dead_letters")
        assert rows == [], f"{service} dead letters: {[dict(r) for r in rows]}"
    await _outboxes_drained(topology)

    # --- SIGTERM: every process stops cleanly, and nothing went wrong on the way -------
    codes = topology.stop()
    problems = [
        f"{name} exited with {code} after SIGTERM (-15: ended by the signal itself, not by "
        "a clean exit; uvicorn re-raises a caught SIGTERM after its graceful shutdown)"
        for name, code in codes.items()
        if code != 0
    ]
    problems += [
        f"logged: {line}"
        for line in topology.output().splitlines()
        if "[error" in line or "[critical" in line or "| ERROR:" in line
    ]
    # counted by PostgreSQL itself; each backend reports its figures when it ends
    for name, deadlocks in await _deadlocks(topology):
        if deadlocks:
            problems.append(
                f"PostgreSQL detected {deadlocks} deadlocks in {name} (its server log has "
                "the statements; the consumers retried them)"
            )
    assert problems == [], "\n".join(problems)


async def _deadlocks(topology: Production) -> list[tuple[str, int]]:
    rows = await topology.query(
        "auth",
        "SELECT datname, deadlocks FROM pg_stat_database WHERE datname = ANY($1::text[])"
        " ORDER BY datname",
        list(topology.databases.values()),
    )
    return [(r["datname"], int(r["deadlocks"])) for r in rows]


async def _wait_until_everyone_is_known(flow: Flow) -> None:
    """Until billing has opened an account for every person and the tasks service knows
    every worker (it has no API for that: its ``people`` table is read)."""

    async def known() -> bool:
        for person in flow.people.values():
            found = await flow.api.call(
                "accountant",
                "GET",
                flow.billing_url(),
                f"/api/accounts/{person['public_id']}",
                expect=(200, 404),
            )
            if found.status_code == 404:
                return False
        rows = await flow.topology.query(
            "tasks", "SELECT public_id FROM people WHERE role = 'worker' AND active"
        )
        return {r["public_id"] for r in rows} == set(flow.workers)

    await eventually(known, timeout=SETTLE_SECONDS, interval=0.5)


async def _assignments_of_tasks(flow: Flow) -> list[dict[str, Any]]:
    """Every ``TaskAssigned`` the tasks service produced (its outbox, in order), checked
    against what its API answered: one per creation and per task a shuffle reassigned,
    one unbroken chain per task ending at its current assignee."""
    rows = await flow.topology.query(
        "tasks", "SELECT payload FROM outbox WHERE event_name = 'TaskAssigned' ORDER BY id"
    )
    events = [json.loads(r["payload"])["data"] for r in rows]
    assert len(events) == flow.assignments

    listed = await flow.api.json(
        "admin",
        "GET",
        flow.tasks_url(),
        "/api/tasks",
        params={"assignee": "all", "limit": 200},
    )
    now = {t["public_id"]: t for t in listed}
    assert set(now) == set(flow.tasks)
    assert {t for t, task in now.items() if task["status"] == "done"} == set(flow.done_by)

    chains: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        chains[event["task_public_id"]].append(event)
    assert set(chains) == set(flow.tasks)
    for task_id, chain in chains.items():
        head, *shuffled = chain
        assert head["reason"] == "created" and head["previous_assignee_public_id"] is None
        assert head["assignee_public_id"] == flow.tasks[task_id]["assignee_public_id"]
        for before, after in zip(chain, shuffled, strict=False):
            assert after["reason"] == "shuffle"
            assert after["previous_assignee_public_id"] == before["assignee_public_id"], chain
        assert chain[-1]["assignee_public_id"] == now[task_id]["assignee_public_id"]
        if task_id in flow.done_by:
            assert flow.done_by[task_id] == now[task_id]["assignee_public_id"]
    by_shuffle = Counter(e["shuffle_id"] for e in events if e["reason"] == "shuffle")
    assert by_shuffle == Counter(flow.shuffles)
    assert {e["assignee_public_id"] for e in events} <= set(flow.workers)
    return events


async def _day_logs(flow: Flow, today: date) -> dict[str, list[dict[str, Any]]]:
    """Today's audit log of every person (public_id -> movements), at either process."""

    async def log(public_id: str) -> tuple[str, list[dict[str, Any]]]:
        entries = await flow.api.json(
            "accountant",
            "GET",
            flow.billing_url(),
            f"/api/accounts/{public_id}/transactions",
            params={"date": today.isoformat()},
        )
        return public_id, entries

    people = [p["public_id"] for p in flow.people.values()]
    return dict(await gather_limited(log(p) for p in people))


async def _settled_books(
    flow: Flow, today: date, expected: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Today's logs once billing has booked as many fees and rewards as the flow caused
    (polled: events reach billing when they do)."""

    async def settled() -> dict[str, list[dict[str, Any]]] | None:
        logs = await _day_logs(flow, today)
        kinds = Counter(m["kind"] for entries in logs.values() for m in entries)
        if kinds["assign_fee"] >= len(expected) and kinds["reward"] >= len(flow.done_by):
            return logs
        return None

    logs: dict[str, list[dict[str, Any]]] = await eventually(
        settled, timeout=SETTLE_SECONDS, interval=0.5
    )
    return logs


async def _check_books(
    flow: Flow, today: date, logs: dict[str, list[dict[str, Any]]], expected: list[dict[str, Any]]
) -> tuple[int, int, dict[str, int], dict[str, dict[str, Any]]]:
    """Each assignment one fee on its worker's account, each completion one reward, at
    the task's one price, described with the task's name; balances equal the day's net.
    Returns today's fees and rewards (cents), each worker's balance, each task's price."""

    async def price(task_id: str) -> tuple[str, dict[str, Any]]:
        found = await flow.api.json(
            "popug1", "GET", flow.billing_url(), f"/api/tasks/{task_id}/price"
        )
        return task_id, found

    prices = dict(await gather_limited(price(t) for t in flow.tasks))
    for found in prices.values():
        assert 1000 <= found["assign_fee_cents"] <= 2000  # B3
        assert 2000 <= found["reward_cents"] <= 4000

    staff = {p["public_id"] for u, p in flow.people.items() if p["role"] != "worker"}
    for owner in staff:
        assert logs[owner] == [], f"staff are never assigned: {logs[owner]}"

    wanted_fees = Counter((e["assignee_public_id"], e["task_public_id"]) for e in expected)
    wanted_reasons = Counter((e["task_public_id"], e["reason"]) for e in expected)
    booked_fees: Counter[tuple[str, str]] = Counter()
    booked_reasons: Counter[tuple[str, str]] = Counter()
    rewarded: dict[str, str] = {}
    fees = rewards = 0
    balances: dict[str, int] = {}
    for owner, username in flow.workers.items():
        for move in logs[owner]:
            task_id = move["task_public_id"]
            task = flow.tasks[task_id]
            label = f"[{task['jira_id']}] {task['title']}" if task["jira_id"] else task["title"]
            assert move["business_date"] == today.isoformat()
            assert label in move["description"], move
            if move["kind"] == "assign_fee":
                booked_fees[owner, task_id] += 1
                assert move["debit_cents"] == prices[task_id]["assign_fee_cents"], move
                assert move["credit_cents"] == 0
                why = "shuffle" if move["description"].startswith("reassigned by shuffle") else ""
                booked_reasons[task_id, why or "created"] += 1
                fees += move["debit_cents"]
            else:
                assert move["kind"] == "reward", move
                assert task_id not in rewarded, f"{task_id} rewarded twice"
                rewarded[task_id] = owner
                assert move["credit_cents"] == prices[task_id]["reward_cents"], move
                rewards += move["credit_cents"]
        account = await flow.api.json(
            "accountant", "GET", flow.billing_url(), f"/api/accounts/{owner}"
        )
        net = sum(m["credit_cents"] - m["debit_cents"] for m in logs[owner])
        assert account["balance_cents"] == net, username
        balances[owner] = net
    assert booked_fees == wanted_fees, "fees booked per (worker, task) differ from assignments"
    assert booked_reasons == wanted_reasons
    assert rewarded == flow.done_by
    mine = await flow.api.json("popug1", "GET", flow.billing_url(), "/api/accounts/me/transactions")
    assert mine == logs[flow.people["popug1"]["public_id"]]
    return fees, rewards, balances, prices


async def _analytics_agree(flow: Flow, today: date, earnings: int, in_debt: int, top: int) -> None:
    """Analytics, fed by events only, shows today's management earnings and the workers in
    debt as billing does, and today's most expensive task is the best-paid completion."""
    analytics = flow.topology.url("analytics")
    last: dict[str, Any] = {}

    async def agree() -> bool:
        nonlocal last
        last = await flow.api.json(
            "admin", "GET", analytics, "/api/dashboard", params={"date": today.isoformat()}
        )
        day = last["most_expensive"]["day"]
        return bool(
            last["management_earnings_cents"] == earnings
            and last["negative_balance_workers"] == in_debt
            and day is not None
            and day["reward_cents"] == top
        )

    try:
        await eventually(agree, timeout=SETTLE_SECONDS, interval=0.5)
    except AssertionError:
        raise AssertionError(
            f"analytics says {last}; billing: earnings {earnings}, {in_debt} in debt, "
            f"best reward {top}"
        )


def _counter(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus counter's samples that carry ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


async def _billing_applied_each_event_once(
    topology: Production, expected: list[dict[str, Any]], completions: int
) -> None:
    """Both billing processes took a share of the work, and together they applied each
    TaskAssigned and TaskCompleted once (a duplicate delivery is counted as one). Polled
    briefly: a process counts an event just after committing it."""
    wanted = {"TaskAssigned": len(expected), "TaskCompleted": completions}
    applied: dict[str, dict[str, int]] = {}

    async def counted() -> bool:
        async with httpx.AsyncClient(timeout=10) as http:
            for proc in topology.replicas("billing"):
                text = (await http.get(f"{proc.url}/metrics")).text
                applied[proc.name] = {
                    event: int(
                        _counter(
                            text,
                            "ates_events_consumed_total",
                            service="billing",
                            event=event,
                            outcome="applied",
                        )
                    )
                    for event in wanted
                }
        total = {e: sum(seen[e] for seen in applied.values()) for e in wanted}
        return total == wanted

    try:
        await eventually(counted, timeout=10, interval=0.5)
    except AssertionError:
        raise AssertionError(f"billing processes applied {applied}, the flow caused {wanted}")
    for name, seen in applied.items():
        assert sum(seen.values()) > 0, f"{name} applied nothing: the work is not shared {applied}"


async def _check_payouts(flow: Flow, today: date, before: dict[str, int]) -> None:
    """Exactly one payout for each worker in credit, of the whole balance; balances in
    credit are now 0, debts are carried over unchanged."""
    logs = await _day_logs(flow, today)
    for owner, balance in before.items():
        payouts = [m for m in logs[owner] if m["kind"] == "payout"]
        name = flow.workers[owner]
        if balance > 0:
            assert len(payouts) == 1, f"{name}: {payouts}"
            assert payouts[0]["debit_cents"] == balance
            assert payouts[0]["description"] == (
                f"paid out {format_cents(balance)} for {today.isoformat()}"
            )
        else:
            assert payouts == [], f"{name} owes {balance} and was paid {payouts}"
        account = await flow.api.json(
            "accountant", "GET", flow.billing_url(), f"/api/accounts/{owner}"
        )
        assert account["balance_cents"] == min(balance, 0), name


async def _outboxes_drained(topology: Production) -> None:
    """Every event every service produced has been published."""

    async def drained() -> bool:
        for service in topology.databases:
            rows = await topology.query(
                service, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"
            )
            if rows[0]["n"]:
                return False
        return True

    await eventually(drained, timeout=30, interval=0.5)
