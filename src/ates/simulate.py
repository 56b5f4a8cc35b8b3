"""``ates simulate``: fill a running aTES with a believable working day, for a demo.

It is a client like any other: it uses only the public HTTP API (DESIGN.md §4), with
tokens got the way ``ates token`` gets them (the ``ates-cli`` PKCE flow with the login
form filled in), as the demo people whose passwords ``ates up`` wrote to
``<data dir>/demo-logins.txt`` and as the workers it creates itself. In order:

1. the admin creates ``workers`` new workers (``POST /api/users``) — their logins are
   printed and appended to ``<data dir>/simulated-logins.txt`` — and it waits until their
   ``AccountCreated`` has been taken in (see :func:`_wait_for_people`);
2. random people create ``tasks`` tasks, each landing on a random worker;
3. the manager presses Shuffle ``shuffles`` times;
4. a ``complete_ratio`` share of the tasks is completed, each by its assignee;
5. it waits until billing has booked every fee and reward of these tasks and, with
   ``close_day``, closes today (paying out positive balances);
6. it prints a summary: what it did, the money billing booked for it, and today's
   management earnings as billing and analytics see them.

Choices (names, titles, who creates what, which tasks get done) follow ``seed``; passwords
never do.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from ates.config import Settings
from ates.platform.money import format_cents
from ates.services.auth.password_login import LoginFailed, password_login

Say = Callable[[str], None]

LOGINS_FILE = "demo-logins.txt"
SIMULATED_LOGINS_FILE = "simulated-logins.txt"
TOKEN_MARGIN_SECONDS = 30  # sign in again when a token has less than this left
POLL_SECONDS = 0.25

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


class SimulationError(Exception):
    """The simulation cannot go on; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Plan:
    workers: int = 5
    tasks: int = 40
    shuffles: int = 1
    complete_ratio: float = 0.7
    close_day: bool = False
    seed: int | None = None
    wait_seconds: float = 60.0  # for events to reach billing and analytics


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    role: str
    password: str


@dataclass
class Summary:
    business_date: date | None = None
    workers: list[Login] = field(default_factory=list)
    tasks: int = 0
    shuffles: int = 0
    reassigned: int = 0
    completed: int = 0
    not_completed_unknown_assignee: int = 0
    fees_cents: int = 0  # booked by billing for this simulation's tasks
    rewards_cents: int = 0
    booked_on: set[date] = field(default_factory=set)
    closed: dict[str, Any] | None = None
    billing_earnings_cents: int | None = None
    analytics_earnings_cents: int | None = None


def read_logins(data_dir: Path) -> dict[str, Login]:
    """The demo people ``ates up`` created, and any worker an earlier simulation made."""
    found: dict[str, Login] = {}
    for name in (LOGINS_FILE, SIMULATED_LOGINS_FILE):
        path = data_dir / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                found[parts[0]] = Login(*parts)
    return found


class Api:
    """The running system's public HTTP API, called as one person or another."""

    def __init__(self, settings: Settings, logins: dict[str, Login], http: httpx.Client) -> None:
        self.settings = settings
        self.logins = logins
        self.http = http
        self._tokens: dict[str, tuple[str, float]] = {}

    def token(self, username: str) -> str:
        cached = self._tokens.get(username)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        login = self.logins[username]
        try:
            answer = password_login(self.settings.public_url("auth"), username, login.password)
        except LoginFailed as error:
            raise SimulationError(f"cannot sign in as {username}: {error}")
        lifetime = float(answer.get("expires_in") or 300)
        expires = time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, 1)
        self._tokens[username] = (str(answer["access_token"]), expires)
        return self._tokens[username][0]

    def call(
        self,
        username: str,
        method: str,
        service: str,
        path: str,
        *,
        ok: Iterable[int] = (),
        **kw: Any,
    ) -> httpx.Response:
        """Send one request as ``username``; any answer but 2xx (or one of ``ok``) stops
        the simulation with the service's own explanation."""
        url = self.settings.public_url(service) + path
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token(username)}"}
            try:
                response = self.http.request(method, url, headers=headers, **kw)
            except httpx.HTTPError as error:
                raise SimulationError(f"{service} at {url} cannot be reached: {error}")
            if response.status_code == 401 and attempt == 1:
                self._tokens.pop(username, None)  # expired early (clock skew): once more
                continue
            break
        if response.is_success or response.status_code in set(ok):
            return response
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise SimulationError(
            f"{method} {url} as {username}: HTTP {response.status_code}: {detail}"
        )

    def json(self, username: str, method: str, service: str, path: str, **kw: Any) -> Any:
        return self.call(username, method, service, path, **kw).json()


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
                log = api.call(
                    accountant,
                    "GET",
                    "billing",
                    f"/api/accounts/{public_id}/transactions",
                    params={"date": day.isoformat()},
                    ok=[404],  # no account yet: nothing booked for them
                )
                if log.status_code == 404:
                    break
                for entry in log.json():
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


# --- the summary ---------------------------------------------------------------------------


def render(summary: Summary, settings: Settings) -> Any:
    """The summary as rich renderables (printed by the command)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    day = summary.business_date.isoformat() if summary.business_date else "today"
    done = Table("", "", title=f"Simulated day {day}", show_header=False, title_justify="left")
    done.add_row("workers created", str(len(summary.workers)))
    done.add_row("tasks created", str(summary.tasks))
    done.add_row("shuffles", f"{summary.shuffles} ({summary.reassigned} open tasks reassigned)")
    done.add_row("tasks completed", str(summary.completed))
    if summary.not_completed_unknown_assignee:
        done.add_row(
            "left open",
            f"{summary.not_completed_unknown_assignee} (assignee's password not known here)",
        )
    done.add_row("fees charged for them", format_cents(summary.fees_cents))
    done.add_row("rewards paid for them", format_cents(summary.rewards_cents))
    booked = ", ".join(d.isoformat() for d in sorted(summary.booked_on)) or "-"
    done.add_row("booked on", booked)
    if summary.closed is not None:
        payouts = summary.closed["payouts"]
        state = "closed" if summary.closed["newly_closed"] else "was closed already"
        done.add_row(
            f"{day} {state}",
            f"{len(payouts)} payouts, {format_cents(summary.closed['paid_cents'])}",
        )
    if summary.billing_earnings_cents is not None:
        done.add_row("management earnings today", format_cents(summary.billing_earnings_cents))
    if summary.analytics_earnings_cents is not None:
        agrees = summary.analytics_earnings_cents == summary.billing_earnings_cents
        note = "agrees with billing" if agrees else "still catching up with billing"
        done.add_row(
            "… as analytics sees them", f"{format_cents(summary.analytics_earnings_cents)} ({note})"
        )
    parts: list[Any] = [done]
    if summary.workers:
        people = Table(
            "username",
            "password",
            title="New workers",
            title_justify="left",
        )
        for login in summary.workers:
            people.add_row(login.username, login.password)
        saved = Text(f"(also in {settings.data_dir / SIMULATED_LOGINS_FILE})", style="dim")
        parts += [people, saved]
    links = Table("dashboard", "URL", show_header=False, title="Look", title_justify="left")
    for service in ("tasks", "billing", "analytics"):
        links.add_row(service, settings.public_url(service) + "/")
    parts.append(links)
    return Group(*parts)
