"""A simulated company: people, tasks, shuffles, completions and billing's movements over
several days, as the events the other services publish (built from the registry's
schemas, not from their code), and the figures a dashboard must show, computed here
independently of analytics' own code."""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ates.platform.events import Event, default_registry


def new_id() -> str:
    return str(uuid.uuid4())


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make(name: str, data: dict[str, Any], at: datetime, *, version: int | None = None) -> Event:
    registry = default_registry()
    version = version or registry.latest_version(name)
    registry.validate(name, version, data)
    producer = {"accounts": "auth", "tasks": "tasks", "billing": "billing"}[
        registry.domain_of(name)
    ]
    return Event(name, version, data, producer, event_time=at)


def midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


@dataclass
class Completed:
    task_public_id: str
    title: str
    jira_id: str | None
    reward_cents: int
    completed_at: datetime
    local_day: date


@dataclass
class Workload:
    zone: ZoneInfo
    first_day: date
    last_day: date
    events: list[Event] = field(default_factory=list)
    fees: dict[date, int] = field(default_factory=lambda: defaultdict(int))
    rewards: dict[date, int] = field(default_factory=lambda: defaultdict(int))
    balances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    roles: dict[str, str] = field(default_factory=dict)  # what auth announced (last role)
    completed: list[Completed] = field(default_factory=list)

    # --- the figures a dashboard must show -------------------------------------------

    def earnings(self, day: date) -> int:
        return self.fees.get(day, 0) - self.rewards.get(day, 0)

    def negative_workers(self) -> set[str]:
        return {
            owner
            for owner, balance in self.balances.items()
            if balance < 0 and self.roles.get(owner, "worker") == "worker"
        }

    def top(self, first: date, last: date) -> Completed | None:
        """The highest reward among tasks completed on local days ``first``..``last``
        (rewards are unique in this workload, so there is no tie to break)."""
        inside = [c for c in self.completed if first <= c.local_day <= last]
        return max(inside, key=lambda c: c.reward_cents, default=None)

    def event_ids(self) -> set[str]:
        return {str(e.event_id) for e in self.events}


class Company:
    """Runs the simulation in time order and records every event and figure."""

    def __init__(self, workload: Workload, rng: random.Random) -> None:
        self.w = workload
        self.rng = rng
        self.workers: list[str] = []
        self.lazy: str | None = None  # gets tasks, never completes them
        self.open: dict[str, str] = {}  # task -> assignee
        self.prices: dict[str, tuple[int, int]] = {}
        self.titles: dict[str, tuple[str, str | None]] = {}
        self.rewards_left = list(range(2000, 3900))  # 3900+ for boundary tasks
        rng.shuffle(self.rewards_left)

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.w.zone).date()

    def emit(self, name: str, data: dict[str, Any], at: datetime, **kw: Any) -> None:
        self.w.events.append(make(name, data, at, **kw))

    def person(self, role: str, at: datetime, *, announce: bool = True) -> str:
        person = new_id()
        if announce:
            self.emit(
                "AccountCreated",
                {
                    "public_id": person,
                    "username": f"u{person[:8]}",
                    "email": f"{person[:8]}@example.com",
                    "full_name": f"Popug {person[:4]}",
                    "role": role,
                },
                at,
            )
            self.w.roles[person] = role
        return person

    def move(
        self, owner: str, kind: str, debit: int, credit: int, task: str | None, at: datetime
    ) -> None:
        day = self.local_day(at)
        self.w.balances[owner] += credit - debit
        if kind == "assign_fee":
            self.w.fees[day] += debit
        elif kind == "reward":
            self.w.rewards[day] += credit
        self.emit(
            "TransactionApplied",
            {
                "transaction_public_id": new_id(),
                "owner_public_id": owner,
                "kind": kind,
                "debit_cents": debit,
                "credit_cents": credit,
                "balance_after_cents": self.w.balances[owner],
                "task_public_id": task,
                "business_date": day.isoformat(),
                "applied_at": rfc3339(at),
                "description": f"{kind} {task or ''}",
            },
            at,
        )

    def assign(self, task: str, at: datetime, reason: str, worker: str | None = None) -> None:
        worker = worker or self.rng.choice(self.workers)
        previous = self.open.get(task)
        self.open[task] = worker
        self.emit(
            "TaskAssigned",
            {
                "task_public_id": task,
                "assignee_public_id": worker,
                "previous_assignee_public_id": previous,
                "reason": reason,
                "shuffle_id": new_id() if reason == "shuffle" else None,
            },
            at,
        )
        self.move(worker, "assign_fee", self.prices[task][0], 0, task, at)

    def create(
        self,
        at: datetime,
        *,
        reward: int | None = None,
        v1: bool = False,
        worker: str | None = None,
    ) -> str:
        task = new_id()
        title = f"Task {task[:6]}"
        jira_id = f"POPUG-{self.rng.randrange(1, 9999)}" if self.rng.random() < 0.6 else None
        self.titles[task] = (title, jira_id)
        if v1:
            full = f"[{jira_id}] {title}" if jira_id else title
            self.emit(
                "TaskCreated", {"public_id": task, "title": full, "description": "d"}, at, version=1
            )
        else:
            self.emit(
                "TaskCreated",
                {"public_id": task, "title": title, "jira_id": jira_id, "description": "d"},
                at,
            )
        fee = self.rng.randint(1000, 2000)
        reward = reward if reward is not None else self.rewards_left.pop()
        self.prices[task] = (fee, reward)
        self.emit(
            "TaskPriced",
            {"task_public_id": task, "assign_fee_cents": fee, "reward_cents": reward},
            at,
        )
        self.assign(task, at, "created", worker)
        return task

    def complete(self, task: str, at: datetime) -> None:
        worker = self.open.pop(task)
        self.emit(
            "TaskCompleted",
            {"task_public_id": task, "assignee_public_id": worker, "completed_at": rfc3339(at)},
            at,
        )
        reward = self.prices[task][1]
        self.move(worker, "reward", 0, reward, task, at)
        title, jira_id = self.titles[task]
        self.w.completed.append(Completed(task, title, jira_id, reward, at, self.local_day(at)))

    def shuffle(self, at: datetime) -> None:
        for task in list(self.open):
            if self.open[task] != self.lazy:
                self.assign(task, at, "shuffle")

    def close(self, day: date, at: datetime) -> None:
        for owner, balance in list(self.w.balances.items()):
            if balance > 0:
                self.move(owner, "payout", balance, 0, None, at)
                self.emit(
                    "PayoutMade",
                    {
                        "owner_public_id": owner,
                        "amount_cents": balance,
                        "business_date": day.isoformat(),
                    },
                    at,
                )
        self.emit("DayClosed", {"business_date": day.isoformat()}, at)


def simulate(
    zone: ZoneInfo, first_day: date, last_day: date, *, seed: int = 7, tasks_per_day: int = 3
) -> Workload:
    """Days ``first_day``..``last_day`` (the last one still open), plus tasks completed
    right beside local midnights, week ends and month ends, with the highest rewards, so
    that a boundary computed in UTC instead of the business zone shows."""
    rng = random.Random(seed)
    w = Workload(zone, first_day, last_day)
    company = Company(w, rng)
    start = midnight(first_day, zone) - timedelta(hours=1)
    company.workers = [company.person("worker", start) for _ in range(4)]
    ghost = company.person("worker", start, announce=False)  # auth's event never came
    company.workers.append(ghost)
    company.person("admin", start)
    company.lazy = company.person("worker", start)
    promoted_at = midnight(first_day, zone) + timedelta(hours=30)
    actions: list[tuple[datetime, int, Any]] = []  # (when, order, action)

    counter = itertools.count()

    def at(when: datetime, action: Any) -> None:
        heapq.heappush(actions, (when, next(counter), action))

    day = first_day
    while day <= last_day:
        begin, end = midnight(day, zone), midnight(day + timedelta(days=1), zone)
        for _ in range(tasks_per_day):
            created = begin + timedelta(seconds=rng.randrange(int((end - begin).total_seconds())))

            def make_task(when: datetime = created) -> None:
                task = company.create(when, v1=rng.random() < 0.2)
                if rng.random() < 0.75:
                    done = when + timedelta(minutes=rng.randrange(10, 30 * 60))
                    if done < midnight(last_day + timedelta(days=1), zone):
                        at(
                            done,
                            lambda: company.complete(task, done) if task in company.open else None,
                        )

            at(created, make_task)
        if rng.random() < 0.5:
            at(
                begin + timedelta(hours=rng.randrange(9, 18)),
                lambda when=begin: company.shuffle(when),
            )
        if day < last_day:
            at(
                end - timedelta(microseconds=1),
                lambda d=day, e=end: company.close(d, e - timedelta(microseconds=1)),
            )
        day += timedelta(days=1)

    # the lazy worker: two tasks, never completed, so their balance stays negative
    def lazy_tasks() -> None:
        for hour in (2, 3):
            company.create(midnight(first_day, zone) + timedelta(hours=hour), worker=company.lazy)

    at(midnight(first_day, zone) + timedelta(hours=1), lazy_tasks)
    # promoted to manager: their debt no longer counts as a worker's
    assert company.lazy is not None
    lazy = company.lazy

    def promote() -> None:
        company.emit(
            "AccountRoleChanged",
            {"public_id": lazy, "old_role": "worker", "new_role": "manager"},
            promoted_at,
        )
        w.roles[lazy] = "manager"
        company.workers = [p for p in company.workers if p != lazy]

    at(promoted_at, promote)
    for local_moment, reward in boundary_completions(first_day, last_day, zone):
        done = local_moment.astimezone(UTC)

        def boundary(done: datetime = done, reward: int = reward) -> None:
            task = company.create(done - timedelta(minutes=20), reward=reward, v1=True)
            company.complete(task, done)

        at(done - timedelta(minutes=20), boundary)

    heapq.heapify(actions)
    while actions:  # an action may schedule a later one (a completion)
        _, _, action = heapq.heappop(actions)
        action()
    return w


def boundary_completions(first: date, last: date, zone: ZoneInfo) -> list[tuple[datetime, int]]:
    """Local times one minute either side of each local midnight that ends a week or a
    month inside the range, rewarded above every ordinary task (rewards are unique)."""
    result = []
    reward = 4000
    day = first
    while day < last:
        following = day + timedelta(days=1)
        if following.weekday() == 0 or following.day == 1:
            edge = datetime.combine(following, time(0), tzinfo=zone)
            result.append((edge - timedelta(minutes=1), reward))
            result.append((edge + timedelta(minutes=1), reward - 1))
            reward -= 2
        day = following
    return result
