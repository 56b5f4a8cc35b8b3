"""Benchmark of the analytics dashboard with 1,000,000 completed tasks.

    .venv/bin/python bench/analytics_dashboard.py [--tasks 1000000] [--days 365]
                                                  [--workers 1000] [--requests 300]

The projections are written straight into a fresh, migrated analytics SQLite database, in
bulk, as the event handlers would have left them after that many events: every task
created, priced and completed (completion times spread over ``--days`` days ending now),
the most expensive completion of each 15-minute bucket, the money of each business day,
and ``--workers`` balances (a third of them negative). Then the analytics service runs as
its own process (``ates serve analytics``: uvicorn, its relay and consumers on a bundled
NATS, idle) and a real HTTP client times requests one after another with an admin token
(ES256, verified against a JWKS this script serves).

Before timing, the answers are checked against figures computed while generating the
data, so a fast wrong answer does not pass. Results go to stdout; the numbers in
docs/benchmarks.md ("Analytics") come from this script.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _issuer import Issuer  # bench/_issuer.py (scripts run from bench/)
from itsdangerous import TimestampSigner

from ates.platform import migrations
from ates.platform.broker.nats.server import EmbeddedNats
from ates.platform.db import Database
from ates.platform.tcp import free_port

BUCKET = 15 * 60
SECRET = "bench-secret-key-not-for-production"


def page_cookie(role: str = "admin") -> str:
    session = {"principal": {"public_id": str(uuid.uuid4()), "role": role, "username": "bench"}}
    data = base64.b64encode(json.dumps(session).encode())
    return TimestampSigner(SECRET).sign(data).decode()


# --- the data --------------------------------------------------------------------------


def stored(moment: datetime) -> str:
    """How SQLAlchemy's SQLite DATETIME stores an (UTC) instant."""
    return f"{moment:%Y-%m-%d %H:%M:%S.%f}"


class Truth:
    """What the dashboard must answer, computed while the data is generated (UTC zone)."""

    def __init__(self) -> None:
        self.fees: dict[date, int] = defaultdict(int)
        self.rewards: dict[date, int] = defaultdict(int)
        self.best_by_day: dict[date, tuple[int, str]] = {}  # rewards are not unique: max only
        self.negative = 0


def fill(path: Path, tasks: int, days: int, workers: int, seed: int = 1) -> Truth:
    rng = random.Random(seed)
    truth = Truth()
    now = datetime.now(UTC)
    span = days * 86400
    start = now - timedelta(seconds=span)
    top: dict[int, tuple[tuple[int, str, str], tuple[Any, ...]]] = {}
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")  # bulk load only; the service runs with FULL
    chunk = 100_000
    for offset in range(0, tasks, chunk):
        rows = []
        for _ in range(min(chunk, tasks - offset)):
            task = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            fee, reward = rng.randint(1000, 2000), rng.randint(2000, 4000)
            done = start + timedelta(microseconds=rng.randrange(span * 1_000_000))
            day = done.date()
            truth.fees[day] += fee
            truth.rewards[day] += reward
            at = stored(done)
            best = truth.best_by_day.get(day)
            if best is None or reward > best[0]:
                truth.best_by_day[day] = (reward, task)
            rows.append(
                (
                    task,
                    f"Task {task[:8]}",
                    f"POPUG-{offset // chunk}",
                    fee,
                    reward,
                    1,
                    str(uuid.uuid4()),
                    "",
                    at,
                    str(uuid.uuid4()),
                )
            )
            bucket = int(done.timestamp()) // BUCKET
            rank = (-reward, at, task)
            if bucket not in top or rank < top[bucket][0]:
                top[bucket] = (rank, (bucket, task, reward, at))
        db.executemany(
            "INSERT INTO tasks (public_id, title, jira_id, assign_fee_cents, "
            "reward_cents, assignments, assignee_public_id, assignee_stamp, "
            "completed_at, completed_by) VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        db.commit()
        print(f"  tasks: {offset + len(rows):,}", flush=True)
    db.executemany("INSERT INTO top_completions VALUES (?,?,?,?)", [r for _, r in top.values()])
    db.executemany(
        "INSERT INTO earnings_by_day VALUES (?,?,?,?,?,?)",
        [(d.isoformat(), truth.fees[d], truth.rewards[d], 0, 0, 0) for d in truth.fees],
    )
    people, balances = [], []
    for n in range(workers):
        person = str(uuid.uuid4())
        people.append(
            (person, f"worker{n}", f"w{n}@example.com", f"Worker {n}", "worker", 1, "", "", "")
        )
        balance = rng.randint(-50_000, 100_000)
        truth.negative += balance < 0
        balances.append((person, balance, stored(now)))
    db.executemany("INSERT INTO people VALUES (?,?,?,?,?,?,?,?,?)", people)
    db.executemany("INSERT INTO balances VALUES (?,?,?)", balances)
    db.commit()
    db.execute("ANALYZE")
    db.close()
    print(f"  buckets: {len(top):,}, business days: {len(truth.fees)}", flush=True)
    return truth


# --- the service ------------------------------------------------------------------------


def start_service(data_dir: Path, nats_url: str, issuer: Issuer, port_base: int) -> Any:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ATES_")},
        "ATES_DATA_DIR": str(data_dir),
        "ATES_BROKER_URL": nats_url,
        "ATES_PORT_BASE": str(port_base),
        "ATES_AUTH_URL": issuer.url,
        "ATES_SECRET_KEY": SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ates", "serve", "analytics", "--no-migrate"],
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port_base + 3}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).json()["broker"] == "connected":
                return process, url
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("analytics did not start")


def timed(client: httpx.Client, path: Callable[[int], str], count: int) -> list[float]:
    for n in range(10):  # warm up: connections, JWKS fetch, SQLite page cache
        client.get(path(n)).raise_for_status()
    times = []
    for n in range(count):
        started = time.perf_counter()
        response = client.get(path(n))
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


def report(name: str, times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    figures = {
        "p50": statistics.median(ordered),
        "p95": ordered[int(len(ordered) * 0.95) - 1],
        "p99": ordered[int(len(ordered) * 0.99) - 1],
        "max": ordered[-1],
    }
    print(f"{name:<44} " + "  ".join(f"{k} {v:6.1f} ms" for k, v in figures.items()), flush=True)
    return figures


def check(client: httpx.Client, truth: Truth) -> None:
    today = datetime.now(UTC).date()
    for day in (today, today - timedelta(days=3), today - timedelta(days=40)):
        body = client.get(f"/api/dashboard?date={day}").json()
        expected = truth.fees.get(day, 0) - truth.rewards.get(day, 0)
        assert body["management_earnings_cents"] == expected, (day, body)
        assert body["negative_balance_workers"] == truth.negative, body
        top = body["most_expensive"]["day"]
        assert top["reward_cents"] == truth.best_by_day[day][0], (day, top)
    print("answers checked against the generated data: ok", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ates-bench-analytics-"))
    data_dir = work / "var"
    data_dir.mkdir()
    db_path = data_dir / "analytics.db"

    async def migrate() -> None:
        db = Database(f"sqlite+aiosqlite:///{db_path}")
        await migrations.upgrade("analytics", db)
        await db.dispose()

    asyncio.run(migrate())
    print(f"filling {db_path} with {args.tasks:,} completed tasks over {args.days} days")
    started = time.perf_counter()
    truth = fill(db_path, args.tasks, args.days, args.workers)
    size = db_path.stat().st_size / 1024**2
    print(f"filled in {time.perf_counter() - started:.0f} s, database {size:.0f} MiB")

    issuer = Issuer()
    nats = EmbeddedNats(work / "nats", port=free_port())
    process = None
    try:
        nats_url = nats.start()
        port_base = free_port() - 3  # analytics listens on port base + 3
        process, url = start_service(data_dir, nats_url, issuer, port_base)
        headers = {"Authorization": f"Bearer {issuer.token()}"}
        today = datetime.now(UTC).date()
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            check(client, truth)
            print(
                f"{args.requests} sequential requests each (python {platform.python_version()},"
                f" {os.cpu_count()} cores, shared):"
            )
            report(
                "GET /api/dashboard (today)",
                timed(client, lambda n: "/api/dashboard", args.requests),
            )
            report(
                "GET /api/dashboard?date=<a random day>",
                timed(
                    client,
                    lambda n: f"/api/dashboard?date={today - timedelta(days=n % args.days)}",
                    args.requests,
                ),
            )
            for days in (7, 31, 366):
                first = today - timedelta(days=days - 1)
                report(
                    f"GET /api/most-expensive ({days} days)",
                    timed(
                        client,
                        lambda n, f=first: f"/api/most-expensive?from={f}&to={today}",
                        args.requests // 3,
                    ),
                )
            client.headers.pop("Authorization")
            client.cookies.set("ates_analytics_session", page_cookie())
            report(
                "GET / (the page: dashboard, 14-day range)",
                timed(client, lambda n: "/", args.requests // 3),
            )
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(15)
        nats.stop()
        issuer.server.shutdown()


if __name__ == "__main__":
    main()
