"""Does the money add up? What billing's and analytics' APIs show, against what the tap
saw billing book, against what the benchmark did and the prices billing set.

Every check compares figures from two independent places:
- per task: exactly one fee and one reward, booked to the worker the task went to, of
  the amounts ``GET /api/tasks/{id}/price`` gives;
- billing's company dashboard, per business day, against the tap's fees - rewards of that
  day, and its change since the start against Σ fees - Σ rewards of the run's tasks;
- every worker's balance (``GET /api/accounts/{id}``) against the last balance the tap saw
  and against the balance at the start + rewards - fees - payouts. "Last" is the order
  any consumer of the events has, ``applied_at`` then transaction id (analytics keeps its
  balances that way): movements of one person sharing an ``applied_at`` leave it
  undecided, and the check says so;
- analytics' dashboard (earnings per day, workers in debt) against billing's books, and
  its list of debtors (``GET /api/negative-balances``) against billing's balances.

They assume nobody else works on the system during the run (true of the stacks the
benchmark starts itself).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from _system_client import Api, BenchError, Crew
from _system_load import Lifecycle
from _system_tap import Books


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Start:
    """The books as they stood before the run: to compare changes, not totals."""

    today: str
    earnings: dict[str, int]
    balances: dict[str, int]
    started: float  # perf_counter()


async def billing_day(api: Api, crew: Crew, day: str | None = None) -> tuple[str, int]:
    params = {"days": 1} if day is None else {"date": day, "days": 1}
    board = await api.json(crew.admin, "GET", "billing", "/api/dashboard", params=params)
    return str(board["date"]), int(board["management_earnings_cents"])


async def balance(api: Api, crew: Crew, owner: str) -> int:
    found = await api.json(crew.admin, "GET", "billing", f"/api/accounts/{owner}")
    return int(found["balance_cents"])


async def start(api: Api, crew: Crew) -> Start:
    today, cents = await billing_day(api, crew)
    balances = {w: await balance(api, crew, w) for w in crew.workers}
    return Start(today, {today: cents}, balances, time.perf_counter())


async def roles(api: Api, crew: Crew) -> dict[str, str]:
    people = await api.json(crew.admin, "GET", "auth", "/api/users")
    return {str(p["public_id"]): str(p["role"]) for p in people}


def days_of(books: Books, tasks: Iterable[str], today: str) -> list[str]:
    """The business days the run's movements were booked on (more than one only when
    the run crossed midnight of the business time zone)."""
    days = {today}
    for task in tasks:
        days.update(m.business_date for m in books.by_task.get(task, ()))
    return sorted(days)


async def analytics_agrees(
    api: Api, crew: Crew, books: Books, days: list[str], people: dict[str, str]
) -> list[str]:
    """What analytics shows differently from the books (empty: it agrees)."""
    differences = []
    expected_debtors = books.negative_workers(people)
    for day in days:
        board = await api.json(
            crew.admin, "GET", "analytics", "/api/dashboard", params={"date": day}
        )
        earnings = int(board["management_earnings_cents"])
        if earnings != books.earnings.get(day, 0):
            differences.append(
                f"{day}: analytics earnings {earnings}, billing booked {books.earnings.get(day, 0)}"
            )
        debtors = int(board["negative_balance_workers"])
        if debtors != expected_debtors:
            differences.append(f"workers in debt: analytics {debtors}, billing {expected_debtors}")
    return differences


async def wait_for_analytics(
    api: Api, crew: Crew, books: Books, days: list[str], timeout: float, poll: float = 0.2
) -> float:
    """Until analytics agrees with the books; when it was seen to (``perf_counter``)."""
    people = await roles(api, crew)
    deadline = time.monotonic() + timeout
    while True:
        differences = await analytics_agrees(api, crew, books, days, people)
        if not differences:
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise BenchError(f"after {timeout:.0f}s analytics disagrees: {'; '.join(differences)}")
        await asyncio.sleep(poll)


class Prices:
    """Billing's price of each task (``GET /api/tasks/{id}/price``), asked once."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[int, int]] = {}

    async def fetch(self, api: Api, crew: Crew, tasks: Iterable[str], at_once: int = 16) -> None:
        missing = iter([t for t in tasks if t not in self.known])

        async def runner() -> None:
            for task in missing:
                price = await api.json(crew.admin, "GET", "billing", f"/api/tasks/{task}/price")
                self.known[task] = (int(price["assign_fee_cents"]), int(price["reward_cents"]))

        await asyncio.gather(*(runner() for _ in range(at_once)))


def _summary(problems: list[str], total: int, what: str) -> Check:
    shown = "; ".join(problems[:3]) + (f"; … {len(problems) - 3} more" if len(problems) > 3 else "")
    ok = not problems
    return Check(what, ok, f"{total} checked" if ok else f"{len(problems)} of {total}: {shown}")


async def verify(
    api: Api, crew: Crew, books: Books, lifecycles: list[Lifecycle], prices: Prices, begin: Start
) -> list[Check]:
    await prices.fetch(api, crew, [lc.task for lc in lifecycles])
    checks = []

    booking, amounts = [], []
    owed: dict[str, int] = dict.fromkeys(crew.workers, 0)
    for lc in lifecycles:
        fee_cents, reward_cents = prices.known[lc.task]
        fees, rewards = books.of(lc.task, "assign_fee"), books.of(lc.task, "reward")
        if len(fees) != 1 or len(rewards) != 1:
            booking.append(f"task {lc.task}: {len(fees)} fees, {len(rewards)} rewards")
            continue
        if {fees[0].owner, rewards[0].owner} != {lc.assignee}:
            booking.append(f"task {lc.task} booked to another worker than its assignee")
        if fees[0].debit_cents != fee_cents or rewards[0].credit_cents != reward_cents:
            amounts.append(
                f"task {lc.task}: booked fee {fees[0].debit_cents} reward "
                f"{rewards[0].credit_cents}, price {fee_cents} / {reward_cents}"
            )
        owed[lc.assignee] = owed.get(lc.assignee, 0) + reward_cents - fee_cents
    checks.append(_summary(booking, len(lifecycles), "every task: one fee and one reward"))
    checks.append(_summary(amounts, len(lifecycles), "booked amounts = billing's prices"))

    days = days_of(books, (lc.task for lc in lifecycles), begin.today)
    board, moved = [], 0
    for day in days:
        _, cents = await billing_day(api, crew, day)
        moved += cents - begin.earnings.get(day, 0)
        if cents != books.earnings.get(day, 0):
            board.append(f"{day}: dashboard {cents}, events {books.earnings.get(day, 0)}")
    checks.append(_summary(board, len(days), "billing dashboard = its events, per day"))
    expected = -sum(owed.values())
    checks.append(
        Check(
            "dashboard moved by Σ fees - Σ rewards",
            moved == expected,
            f"moved {moved / 100:.2f} $, prices say {expected / 100:.2f} $",
        )
    )

    paid = dict.fromkeys(crew.workers, 0)
    for m in books.movements.values():
        if m.kind == "payout" and m.owner in paid and m.arrived >= begin.started:
            paid[m.owner] += m.debit_cents
    wrong, balances = [], {}
    for worker in crew.workers:
        seen = balances[worker] = await balance(api, crew, worker)
        expected_balance = begin.balances.get(worker, 0) + owed.get(worker, 0) - paid[worker]
        if not seen == books.balance(worker) == expected_balance:
            ties = books.tied(worker)
            why = f" ({ties} of their movements share an applied_at)" if ties else ""
            wrong.append(
                f"{crew.workers[worker].username}: API {seen}, last in the events "
                f"{books.balance(worker)}{why}, expected {expected_balance}"
            )
    checks.append(_summary(wrong, len(crew.workers), "every worker's balance"))

    differences = await analytics_agrees(api, crew, books, days, await roles(api, crew))
    checks.append(_summary(differences, len(days) * 2, "analytics = billing"))

    debtors = await api.json(crew.admin, "GET", "analytics", "/api/negative-balances")
    listed = {str(d["owner_public_id"]): int(d["balance_cents"]) for d in debtors["workers"]}
    debts = [
        f"{crew.workers[w].username}: billing {cents}, analytics {listed.get(w, 'no debt')}"
        for w, cents in balances.items()
        if listed.get(w) != (cents if cents < 0 else None)
    ]
    checks.append(_summary(debts, len(balances), "analytics' debtors = billing's balances"))
    return checks
