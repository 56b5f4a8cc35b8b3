"""The simulated working day, step by step (see the package docstring)."""

from __future__ import annotations

import math
import random
import secrets
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from ates.config import Settings
from ates.simulate.client import (
    LOGINS_FILE,
    POLL_SECONDS,
    SIMULATED_LOGINS_FILE,
    Api,
    Say,
    read_logins,
)
from ates.simulate.plan import Login, Plan, SimulationError, Summary

FIRST_NAMES = (
    "Kiwi", "Mango", "Pico", "Zazu", "Rocco", "Coco", "Sunny", "Pepper", "Skye", "Tango",
    "Lulu", "Bingo", "Jazz", "Peach", "Echo", "Blue", "Nacho", "Olive", "Ziggy", "Mojo",
)  # fmt: skip
VERBS = (
    "Fix", "Refactor", "Document", "Review", "Speed up", "Add tests for", "Translate",
    "Migrate", "Redesign", "Clean up", "Monitor", "Secure",
)  # fmt: skip
THINGS = (
    "the perch booking API", "the seed distribution report", "the cage door sensor",
    "the login page", "the feather export", "the nest booking form", "the millet inventory",
    "night mode in the flock app", "cracker payments", "the cuttlebone supplier sync",
    "the mirror-and-bell catalogue", "the squawk notification queue",
)  # fmt: skip

DETAILS = (
    "Reported by the night shift.", "Blocks the Friday release.", "Small, but annoying.",
    "Customers keep asking about it.", "Found while looking at last week's figures.",
    "Pair with someone who knows this corner of the code.", "The flock voted for it.",
)  # fmt: skip


def run(settings: Settings, plan: Plan, say: Say = print) -> Summary:
    """Drive the running system through one simulated day; see the module docstring."""
    logins = read_logins(settings.data_dir)
    admin = _someone(logins, "admin")
    if admin is None:
        raise SimulationError(
            f"no admin login in {settings.data_dir / LOGINS_FILE}: run 'ates simulate' "
            "with the --data-dir of a stack started by 'ates up' (it writes that file)"
        )
    rng = random.Random(plan.seed)
    summary = Summary()
    with httpx.Client(timeout=30) as http:
        api = Api(settings, logins, http)
        say(f"signing in as {admin} at {settings.public_url('auth')}")
        accountant = _someone(logins, "accountant") or admin
        summary.business_date = _billing_today(api, accountant)

        summary.workers = _create_workers(api, admin, plan.workers, rng, settings.data_dir)
        if summary.workers:
            say(f"created {len(summary.workers)} workers; waiting for the services to hear of them")
            _wait_for_people(api, admin, accountant, summary.workers, plan.wait_seconds)

        tasks = _create_tasks(api, rng, plan.tasks)
        summary.tasks = len(tasks)
        say(f"created {len(tasks)} tasks")

        manager = _someone(logins, "manager") or admin
        for _ in range(plan.shuffles):
            result = api.json(manager, "POST", "tasks", "/api/tasks/shuffle")
            summary.shuffles += 1
            summary.reassigned += int(result["reassigned"])
        if plan.shuffles:
            times = "once" if summary.shuffles == 1 else f"{summary.shuffles} times"
            say(f"shuffled {times}: {summary.reassigned} open tasks reassigned")

        done, unknown = _complete_some(api, admin, tasks, plan.complete_ratio, rng)
        summary.completed, summary.not_completed_unknown_assignee = len(done), unknown
        say(f"completed {len(done)} tasks, each as its assignee")

        say("waiting for billing to book every fee and reward")
        booked = _wait_for_books(
            api,
            admin,
            accountant,
            summary.business_date,
            set(tasks),
            fees=len(tasks) * (1 + summary.shuffles),
            rewards=len(done),
            timeout=plan.wait_seconds,
        )
        summary.fees_cents, summary.rewards_cents, summary.booked_on = booked
        later = sorted(d.isoformat() for d in summary.booked_on if d != summary.business_date)
        if later:
            say(
                f"note: {summary.business_date.isoformat()} was closed already, so billing "
                f"booked these movements on the next open day ({', '.join(later)})"
            )

        if plan.close_day:
            day = summary.business_date.isoformat()
            summary.closed = api.json(accountant, "POST", "billing", f"/api/days/{day}/close")
            say(f"closed {day}")

        board = api.json(accountant, "GET", "billing", "/api/dashboard", params={"days": 1})
        summary.billing_earnings_cents = int(board["management_earnings_cents"])
        summary.analytics_earnings_cents = _analytics_earnings(
            api, admin, summary.billing_earnings_cents, plan.wait_seconds
        )
    return summary


def _someone(logins: dict[str, Login], role: str) -> str | None:
    """The demo person of ``role`` (the one named after it, if there is one)."""
    if role in logins and logins[role].role == role:
        return role
    return next((login.username for login in logins.values() if login.role == role), None)


def _billing_today(api: Api, accountant: str) -> date:
    board = api.json(accountant, "GET", "billing", "/api/dashboard", params={"days": 1})
    return date.fromisoformat(board["date"])


# --- people --------------------------------------------------------------------------------


def _create_workers(
    api: Api, admin: str, count: int, rng: random.Random, data_dir: Path
) -> list[Login]:
    if count <= 0:
        return []
    taken = {p["username"] for p in api.json(admin, "GET", "auth", "/api/users")}
    made: list[Login] = []
    names = list(FIRST_NAMES)
    rng.shuffle(names)
    for i in range(count):
        first = names[i % len(names)]
        username = _free_username(first.lower(), taken)
        taken.add(username)
        login = Login(username, "worker", secrets.token_urlsafe(9))
        api.call(
            admin,
            "POST",
            "auth",
            "/api/users",
            json={
                "username": username,
                "role": "worker",
                "password": login.password,
                "full_name": f"{first} Popug",
            },
        )
        api.logins[username] = login
        made.append(login)
    _remember(data_dir / SIMULATED_LOGINS_FILE, made)
    return made


def _free_username(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}{n}" in taken:
        n += 1
    return f"{base}{n}"


def _remember(path: Path, logins: list[Login]) -> None:
    """Keep the new logins beside the demo ones, readable by their owner only."""
    with path.open("a") as out:
        for login in logins:
            out.write(f"{login.username}\t{login.role}\t{login.password}\n")
    path.chmod(0o600)


def _wait_for_people(
    api: Api, admin: str, accountant: str, workers: list[Login], timeout: float
) -> None:
    """Wait until the new workers' ``AccountCreated`` has been taken in.

    The tasks service has no public way to ask whether it knows a person, so this waits
    for billing to have opened their accounts: the same event on the same stream, which
    both services read as it comes. A worker tasks has not heard of yet only means that
    the first tasks do not land on them."""
    people = {p["username"]: p["public_id"] for p in api.json(admin, "GET", "auth", "/api/users")}
    pending = {people[w.username] for w in workers}
    deadline = time.monotonic() + timeout
    while pending:
        for public_id in sorted(pending):
            found = api.call(accountant, "GET", "billing", f"/api/accounts/{public_id}", ok=[404])
            if found.status_code == 200:
                pending.discard(public_id)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise SimulationError(
                f"billing has not opened accounts for {len(pending)} new workers after "
                f"{timeout:.0f}s: is every service running? ('ates dlq list billing')"
            )
        time.sleep(POLL_SECONDS)


# --- tasks ---------------------------------------------------------------------------------


def _create_tasks(api: Api, rng: random.Random, count: int) -> list[str]:
    """Tasks made by random people (anyone may create one); their public ids."""
    creators = sorted(api.logins)
    made = []
    for _ in range(count):
        title = f"{rng.choice(VERBS)} {rng.choice(THINGS)}"
        body: dict[str, Any] = {
            "title": title,
            "description": rng.choice(DETAILS),
        }
        if rng.random() < 0.7:
            body["jira_id"] = f"POPUG-{rng.randint(100, 999)}"
        task = api.json(rng.choice(creators), "POST", "tasks", "/api/tasks", json=body)
        made.append(str(task["public_id"]))
    return made


def _complete_some(
    api: Api, admin: str, tasks: list[str], ratio: float, rng: random.Random
) -> tuple[list[str], int]:
    """Complete ``ratio`` of ``tasks``, each as its assignee. A task whose assignee's
    password we do not know (someone made outside ``ates up`` and this simulation) is
    left open. Returns the completed ids and how many were left for that reason."""
    wanted = math.floor(len(tasks) * ratio + 0.5)
    if wanted == 0:
        return [], 0
    usernames = {
        p["public_id"]: p["username"] for p in api.json(admin, "GET", "auth", "/api/users")
    }
    candidates = []
    for public_id in tasks:
        task = api.json(admin, "GET", "tasks", f"/api/tasks/{public_id}")
        assignee = usernames.get(task["assignee_public_id"])
        if task["status"] == "open" and assignee in api.logins:
            candidates.append((public_id, assignee))
    rng.shuffle(candidates)
    done = []
    for public_id, assignee in candidates[:wanted]:
        api.call(assignee, "POST", "tasks", f"/api/tasks/{public_id}/complete")
        done.append(public_id)
    return done, wanted - len(done)


# --- the books -----------------------------------------------------------------------------


def _wait_for_books(
    api: Api,
    admin: str,
    accountant: str,
    today: date,
    tasks: set[str],
    *,
    fees: int,
    rewards: int,
    timeout: float,
) -> tuple[int, int, set[date]]:
    """Wait until billing has booked ``fees`` assignment fees and ``rewards`` rewards for
    ``tasks``; return the fees and rewards in cents and the days they were booked on.

    They are booked today, or tomorrow if today was closed already (a movement for a
    closed day goes to the first open day)."""
    people = [p["public_id"] for p in api.json(admin, "GET", "auth", "/api/users")]
    days = (today, today + timedelta(days=1))
    deadline = time.monotonic() + timeout
    while True:
        seen_fees = seen_rewards = fee_cents = reward_cents = 0
        booked_on: set[date] = set()
        for public_id in people:
            for day in days:
                entries = _day_log(api, accountant, public_id, day)
                if entries is None:
                    break
                for entry in entries:
                    if entry["task_public_id"] not in tasks:
                        continue
                    if entry["kind"] == "assign_fee":
                        seen_fees += 1
                        fee_cents += entry["debit_cents"] - entry["credit_cents"]
                    elif entry["kind"] == "reward":
                        seen_rewards += 1
                        reward_cents += entry["credit_cents"] - entry["debit_cents"]
                    booked_on.add(date.fromisoformat(entry["business_date"]))
        if seen_fees >= fees and seen_rewards >= rewards:
            return fee_cents, reward_cents, booked_on
        if time.monotonic() > deadline:
            raise SimulationError(
                f"after {timeout:.0f}s billing has booked {seen_fees} of {fees} fees and "
                f"{seen_rewards} of {rewards} rewards: is billing running? "
                "('ates dlq list billing' shows events it could not apply)"
            )
        time.sleep(POLL_SECONDS)


def _analytics_earnings(api: Api, admin: str, billing: int, timeout: float) -> int:
    """Analytics' management earnings today, once they agree with billing's (or what they
    are when ``timeout`` runs out: analytics catches up through events)."""
    deadline = time.monotonic() + timeout
    while True:
        board = api.json(admin, "GET", "analytics", "/api/dashboard")
        seen = int(board["management_earnings_cents"])
        if seen == billing or time.monotonic() > deadline:
            return seen
        time.sleep(POLL_SECONDS)


def _day_log(api: Api, accountant: str, public_id: str, day: date) -> list[dict[str, Any]] | None:
    """A person's audit log of ``day``, page after page (``Link: <…>; rel="next"``);
    None if billing has no account for them yet (nothing booked)."""
    entries: list[dict[str, Any]] = []
    path = f"/api/accounts/{public_id}/transactions?date={day.isoformat()}"
    while True:
        page = api.call(accountant, "GET", "billing", path, ok=[404])
        if page.status_code == 404:
            return None
        entries += page.json()
        following = page.links.get("next")
        if following is None:
            return entries
        path = httpx.URL(following["url"]).raw_path.decode()
