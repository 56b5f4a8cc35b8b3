"""What every service must show after a working day (``tests/e2e/workday.py``): the same
story in tasks, billing and analytics, each money effect exactly once.

- every ``TaskAssigned`` the tasks service produced (creations + each shuffle's
  ``reassigned``; one unbroken chain per task) is exactly one ``assign_fee`` in billing,
  on the right worker's account, at the task's one price; every completion one reward;
- billing's and analytics' management earnings for today are fees - rewards;
- ``ates billing verify`` is clean, no service holds a dead letter, every outbox is
  drained; on SIGTERM every process exits 0, none logged an error, PostgreSQL counted no
  deadlock.

A lost event shows as a fee or reward that never comes (the waits time out); a
duplicated one as a count per (worker, task) above the assignments, a second reward, or
analytics' earnings off billing's.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ates.platform.money import format_cents
from tests.e2e.production import Production, gather_limited
from tests.support import eventually

if TYPE_CHECKING:
    from tests.e2e.workday import Flow

SETTLE_SECONDS = 90.0


@dataclass(frozen=True)
class Books:
    """Today's books as billing keeps them, once checked against the tasks service."""

    today: date
    expected: list[dict[str, Any]]  # every TaskAssigned the tasks service produced
    fees: int
    rewards: int
    balances: dict[str, int]  # worker's public_id -> balance (cents)
    prices: dict[str, dict[str, Any]]  # task public_id -> its price

    @property
    def earnings(self) -> int:
        return self.fees - self.rewards

    @property
    def in_debt(self) -> int:
        return sum(1 for b in self.balances.values() if b < 0)


async def today_of(flow: Flow) -> date:
    """The business day billing books on now."""
    board = await flow.api.json("accountant", "GET", flow.billing_url(), "/api/dashboard")
    return date.fromisoformat(board["date"])


async def books_add_up(flow: Flow, today: date) -> Books:
    """Billing booked each assignment and completion of the flow exactly once, at the
    task's one price (waiting for the events to arrive), and analytics shows the same
    earnings and debtors."""
    expected = await assignments_of_tasks(flow)
    logs = await settled_books(flow, today, expected)
    fees, rewards, balances, prices = await check_books(flow, today, logs, expected)
    books = Books(today, expected, fees, rewards, balances, prices)
    board = await flow.api.json(
        "accountant",
        "GET",
        flow.billing_url(),
        "/api/dashboard",
        params={"date": today.isoformat(), "days": 1},
    )
    assert board["management_earnings_cents"] == books.earnings
    assert board["days"] == [
        {"date": today.isoformat(), "management_earnings_cents": books.earnings}
    ]
    await analytics_agree(flow, books)
    return books


def best_reward(flow: Flow, books: Books) -> int | None:
    done = [books.prices[t]["reward_cents"] for t in flow.done_by]
    return max(done) if done else None


async def wait_until_everyone_is_known(flow: Flow) -> None:
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


async def assignments_of_tasks(flow: Flow) -> list[dict[str, Any]]:
    """Every ``TaskAssigned`` the tasks service produced (its outbox, in order), checked
    against what its API answered: one per creation and per task a shuffle reassigned,
    one unbroken chain per task ending at its current assignee."""
    rows = await flow.topology.query(
        "tasks", "SELECT payload FROM outbox WHERE event_name = 'TaskAssigned' ORDER BY id"
    )
    events = [json.loads(r["payload"])["data"] for r in rows]
    assert len(events) == flow.assignments

    now = {t["public_id"]: t for t in await every_task(flow)}
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


async def every_task(flow: Flow) -> list[dict[str, Any]]:
    """Every task, as the tasks service lists them to an admin (page after page, following
    each answer's ``Link: <…>; rel="next"``)."""
    found: list[dict[str, Any]] = []
    url, path = flow.tasks_url(), "/api/tasks?assignee=all&limit=200"
    while True:
        page = await flow.api.call("admin", "GET", url, path)
        found += page.json()
        following = page.links.get("next")
        if following is None:
            return found
        path = httpx.URL(following["url"]).raw_path.decode()


async def day_logs(flow: Flow, today: date) -> dict[str, list[dict[str, Any]]]:
    """Today's audit log of every person (public_id -> movements), at either process,
    page after page (a long day's log comes in pages)."""

    async def log(public_id: str) -> tuple[str, list[dict[str, Any]]]:
        path = f"/api/accounts/{public_id}/transactions?date={today.isoformat()}"
        return public_id, await billing_pages(flow, "accountant", path)

    people = [p["public_id"] for p in flow.people.values()]
    return dict(await gather_limited(log(p) for p in people))


async def billing_pages(flow: Flow, username: str, path: str) -> list[dict[str, Any]]:
    """A list billing answers in pages, page after page (``Link: <…>; rel="next"``)."""
    found: list[dict[str, Any]] = []
    while True:
        page = await flow.api.call(username, "GET", flow.billing_url(), path)
        found += page.json()
        following = page.links.get("next")
        if following is None:
            return found
        path = httpx.URL(following["url"]).raw_path.decode()


async def settled_books(
    flow: Flow, today: date, expected: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Today's logs once billing has booked as many fees and rewards as the flow caused
    (polled: events reach billing when they do)."""
    last: Counter[str] = Counter()

    async def settled() -> dict[str, list[dict[str, Any]]] | None:
        nonlocal last
        logs = await day_logs(flow, today)
        last = Counter(m["kind"] for entries in logs.values() for m in entries)
        if last["assign_fee"] >= len(expected) and last["reward"] >= len(flow.done_by):
            return logs
        return None

    try:
        logs: dict[str, list[dict[str, Any]]] = await eventually(
            settled, timeout=SETTLE_SECONDS, interval=0.5
        )
    except AssertionError as error:
        raise AssertionError(
            f"billing booked {last['assign_fee']} fees and {last['reward']} rewards; the "
            f"flow caused {len(expected)} assignments and {len(flow.done_by)} completions"
        ) from error
    return logs


async def check_books(
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
    mine = await billing_pages(flow, "popug1", "/api/accounts/me/transactions")
    assert mine == logs[flow.people["popug1"]["public_id"]]
    return fees, rewards, balances, prices


async def analytics_agree(flow: Flow, books: Books) -> None:
    """Analytics, fed by events only, shows today's management earnings and the workers in
    debt as billing does, and today's most expensive task is the best-paid completion."""
    analytics = flow.topology.url("analytics")
    top = best_reward(flow, books)
    last: dict[str, Any] = {}

    async def agree() -> bool:
        nonlocal last
        last = await flow.api.json(
            "admin", "GET", analytics, "/api/dashboard", params={"date": books.today.isoformat()}
        )
        day = last["most_expensive"]["day"]
        return bool(
            last["management_earnings_cents"] == books.earnings
            and last["negative_balance_workers"] == books.in_debt
            and (day["reward_cents"] if day is not None else None) == top
        )

    try:
        await eventually(agree, timeout=SETTLE_SECONDS, interval=0.5)
    except AssertionError as error:
        raise AssertionError(
            f"analytics says {last}; billing: earnings {books.earnings}, {books.in_debt} in "
            f"debt, best reward {top}"
        ) from error


def counter(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus counter's samples that carry ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


async def applied(topology: Production, service: str, *events: str) -> dict[str, int]:
    """Events each live process of ``service`` applied so far (its ``/metrics``)."""
    found: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for proc in topology.replicas(service):
            text = (await http.get(f"{proc.url}/metrics")).text
            found[proc.name] = sum(
                int(
                    counter(
                        text,
                        "ates_events_consumed_total",
                        service=service,
                        event=event,
                        outcome="applied",
                    )
                )
                for event in events
            )
    return found


async def billing_applied_each_event_once(
    topology: Production, expected: list[dict[str, Any]], completions: int
) -> None:
    """Both billing processes took a share of the work, and together they applied each
    TaskAssigned and TaskCompleted once (a duplicate delivery is counted as one). Polled
    briefly: a process counts an event just after committing it."""
    wanted = {"TaskAssigned": len(expected), "TaskCompleted": completions}
    seen: dict[str, dict[str, int]] = {}

    async def counted() -> bool:
        for event in wanted:
            for name, n in (await applied(topology, "billing", event)).items():
                seen.setdefault(name, {})[event] = n
        total = {e: sum(by[e] for by in seen.values()) for e in wanted}
        return total == wanted

    try:
        await eventually(counted, timeout=10, interval=0.5)
    except AssertionError as error:
        raise AssertionError(
            f"billing processes applied {seen}, the flow caused {wanted}"
        ) from error
    for name, by_event in seen.items():
        assert sum(by_event.values()) > 0, f"{name} applied nothing: the work is not shared {seen}"


async def check_payouts(flow: Flow, today: date, before: dict[str, int]) -> None:
    """Exactly one payout for each worker in credit, of the whole balance; balances in
    credit are now 0, debts are carried over unchanged."""
    logs = await day_logs(flow, today)
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


async def operator_sees_clean_books(topology: Production) -> None:
    """The command line with the topology's environment: ``ates billing verify`` is
    clean, ``ates dlq list`` shows no dead letter in any service (the tables are empty
    too), and every outbox is drained."""
    results = await asyncio.gather(
        topology.ates("billing", "verify", check=False),
        *(topology.ates("dlq", "list", s, check=False) for s in topology.databases),
    )
    verify, *letters = results
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "books ok" in verify.stdout
    for service, listed in zip(topology.databases, letters, strict=True):
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert f"{service}: no pending dead letters" in listed.stdout, listed.stdout
    for service in topology.databases:
        rows = await topology.query(service, "SELECT consumer, event_name, error FROM dead_letters")
        assert rows == [], f"{service} dead letters: {[dict(r) for r in rows]}"
    await outboxes_drained(topology)


async def outboxes_drained(topology: Production) -> None:
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


# Logged as errors by a client library but part of its normal, retried course:
# - aiokafka, when the first consumer group of a fresh Kafka cluster looks for its
#   coordinator while the broker is still creating ``__consumer_offsets``.
EXPECTED_ERRORS = ("Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailable",)


async def stops_cleanly(topology: Production, *, errors_allowed: bool = False) -> None:
    """SIGTERM: every process (but those the test killed) exits 0; none logged an error
    (unless ``errors_allowed``: a test that kills the broker causes some); PostgreSQL
    counted no deadlock in any service database."""
    codes = topology.stop()
    problems = [
        f"{name} exited with {code} after SIGTERM (-15: ended by the signal itself, not by "
        "a clean exit; uvicorn re-raises a caught SIGTERM after its graceful shutdown)"
        for name, code in codes.items()
        if code != 0
    ]
    if not errors_allowed:
        problems += [
            f"logged: {line}"
            for line in topology.output().splitlines()
            if ("[error" in line or "[critical" in line or "| ERROR:" in line)
            and not any(expected in line for expected in EXPECTED_ERRORS)
        ]
    # counted by PostgreSQL itself; each backend reports its figures when it ends
    for name, deadlocks in await deadlocks_of(topology):
        if deadlocks:
            problems.append(
                f"PostgreSQL detected {deadlocks} deadlocks in {name} (its server log has "
                "the statements; the consumers retried them)"
            )
    assert problems == [], "\n".join(problems)


async def deadlocks_of(topology: Production) -> list[tuple[str, int]]:
    rows = await topology.query(
        "auth",
        "SELECT datname, deadlocks FROM pg_stat_database WHERE datname = ANY($1::text[])"
        " ORDER BY datname",
        list(topology.databases.values()),
    )
    return [(r["datname"], int(r["deadlocks"])) for r in rows]
