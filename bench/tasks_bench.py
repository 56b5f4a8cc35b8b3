"""Benchmark of the tasks service: HTTP create/complete rates, the shuffle of 100,000 open
tasks (time, peak memory) and the relay publishing its events to the bundled NATS.

    .venv/bin/python bench/tasks_bench.py [--tasks 100000] [--workers 1000]
                                          [--requests 2000] [--concurrency 8]

Everything is real: the tasks service runs as its own process (``bench/tasks_server.py``,
uvicorn on a free port, SQLite file, bundled NATS with ``sync_interval: always``), the
client is httpx, tokens are ES256 JWTs verified against a JWKS this script serves. The
fixtures are written straight into the tasks database: 1,000 workers (as if announced by
auth) and the open tasks to shuffle (as if created earlier; their creation events are not
part of the measurement).

1. HTTP: ``POST /api/tasks`` then ``POST /api/tasks/{id}/complete`` by each assignee,
   ``--concurrency`` requests in flight, service with its relay running.
2. Shuffle: a fresh service process without its relay; one ``POST /api/tasks/shuffle``;
   wall time of the request (every batch's reassignment and outbox rows committed) and
   the process's peak RSS (``VmHWM``). Meanwhile a task is created every 100 ms to show
   that creation is not blocked; their worst latency is reported.
3. Relay: the service restarted with messaging; time until its outbox backlog is 0.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from _issuer import Issuer  # bench/_issuer.py (scripts run from bench/)
from sqlalchemy import func, insert, select

from ates.platform import migrations
from ates.platform.broker.nats.server import EmbeddedNats
from ates.platform.db import Database
from ates.platform.tables import outbox
from ates.platform.tcp import free_port
from ates.services.tasks.models import Person, Task

SERVER = Path(__file__).with_name("tasks_server.py")


# --- identity: a JWKS and tokens, as auth would issue them -------------------------------


# --- fixtures written straight into the tasks database -----------------------------------


async def seed_workers(db: Database, count: int) -> list[str]:
    workers = [str(uuid.uuid4()) for _ in range(count)]
    rows = [
        {"public_id": w, "username": f"w{i}", "full_name": f"Worker {i}", "role": "worker"}
        for i, w in enumerate(workers)
    ]
    async with db.sessions() as session, session.begin():
        await session.execute(insert(Person).values(active=True), rows)
    return workers


async def seed_open_tasks(db: Database, workers: list[str], count: int) -> None:
    now = datetime.now(UTC)
    for start in range(0, count, 10_000):
        rows = [
            {
                "public_id": str(uuid.uuid4()),
                "title": f"Seeded task {i}",
                "description": "",
                "status": "open",
                "assignee_public_id": workers[i % len(workers)],
                "created_at": now,
            }
            for i in range(start, min(start + 10_000, count))
        ]
        async with db.sessions() as session, session.begin():
            await session.execute(insert(Task), rows)


async def backlog(db: Database) -> int:
    async with db.reader() as session:
        query = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        return int(await session.scalar(query) or 0)


# --- the service process -----------------------------------------------------------------


class Service:
    def __init__(self, env: dict[str, str], url: str, log: Path, *, messaging: bool) -> None:
        self.url = url
        self.messaging = messaging
        args = [sys.executable, str(SERVER)] + ([] if messaging else ["--no-messaging"])
        self.log = log.open("ab")
        self.process = subprocess.Popen(args, env=env, stdout=self.log, stderr=self.log)

    async def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"tasks service exited ({self.process.returncode})")
                try:
                    health = (await client.get(f"{self.url}/healthz")).json()
                    if not self.messaging or health["broker"] == "connected":
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("tasks service did not start")

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
        return kib / 1024

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# --- measurements ------------------------------------------------------------------------


async def timed_requests(
    calls: Sequence[Callable[[], Awaitable[httpx.Response]]], concurrency: int, expect: int
) -> tuple[float, list[float]]:
    """Run the calls with ``concurrency`` in flight; (elapsed seconds, latencies)."""
    queue = iter(calls)
    latencies: list[float] = []

    async def worker() -> None:
        for call in queue:
            started = time.perf_counter()
            response = await call()
            latencies.append(time.perf_counter() - started)
            if response.status_code != expect:
                raise RuntimeError(f"{response.status_code}: {response.text}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def describe(name: str, count: int, elapsed: float, latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100)
    return (
        f"{name}: {count} requests in {elapsed:.2f} s = {count / elapsed:.0f} req/s "
        f"(p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms)"
    )


async def http_rates(
    url: str, issuer: Issuer, workers: list[str], requests: int, concurrency: int
) -> list[str]:
    manager = issuer.headers("manager")
    worker_headers = {w: issuer.headers("worker", w) for w in workers}
    created: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def create(i: int) -> httpx.Response:
            body = {"title": f"Task {i}", "jira_id": f"POPUG-{i}", "description": "bench"}
            response = await client.post("/api/tasks", json=body, headers=manager)
            created.append(response.json())
            return response

        calls = [functools.partial(create, i) for i in range(requests)]
        create_time, create_lat = await timed_requests(calls, concurrency, 201)

        def complete(task: dict[str, Any]) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: client.post(
                f"/api/tasks/{task['public_id']}/complete",
                headers=worker_headers[task["assignee_public_id"]],
            )

        complete_time, complete_lat = await timed_requests(
            [complete(t) for t in created], concurrency, 200
        )
    return [
        describe("create  POST /api/tasks", requests, create_time, create_lat),
        describe("complete POST /api/tasks/{id}/complete", requests, complete_time, complete_lat),
    ]


async def shuffle_while_creating(
    url: str, issuer: Issuer
) -> tuple[dict[str, Any], float, list[float]]:
    admin, manager = issuer.headers("admin"), issuer.headers("manager")
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        done = asyncio.Event()
        latencies: list[float] = []

        async def keep_creating() -> None:
            while not done.is_set():
                started = time.perf_counter()
                response = await client.post(
                    "/api/tasks", json={"title": "Meanwhile"}, headers=manager
                )
                if response.status_code != 201:
                    raise RuntimeError(response.text)
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.1)

        creating = asyncio.create_task(keep_creating())
        started = time.perf_counter()
        response = await client.post("/api/tasks/shuffle", headers=admin)
        elapsed = time.perf_counter() - started
        done.set()
        await creating
    response.raise_for_status()
    return response.json(), elapsed, latencies


async def wait_for_empty_outbox(db: Database, timeout: float) -> float:
    started = time.perf_counter()
    while await backlog(db):
        if time.perf_counter() - started > timeout:
            raise RuntimeError("the relay did not drain the outbox in time")
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ates-tasks-bench-"))
    nats = EmbeddedNats(workdir / "nats")
    nats.start()
    issuer = Issuer()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATES_")}
    env.update(
        ATES_DATA_DIR=str(workdir / "data"),
        ATES_PORT_BASE=str(port - 1),
        ATES_AUTH_URL=issuer.url,
        ATES_BROKER_URL=nats.url,
    )
    quiet = {k: v for k, v in env.items() if k != "ATES_BROKER_URL"}
    url = f"http://127.0.0.1:{port}"
    log = workdir / "service.log"
    db = Database(f"sqlite+aiosqlite:///{workdir / 'data' / 'tasks.db'}")
    print(f"data in {workdir}; machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    try:
        await migrations.upgrade("tasks", db)
        workers = await seed_workers(db, args.workers)

        service = Service(env, url, log, messaging=True)
        await service.ready()
        rates = await http_rates(url, issuer, workers, args.requests, args.concurrency)
        await wait_for_empty_outbox(db, 300)
        service.stop()
        for line in rates:
            print(line)

        await seed_open_tasks(db, workers, args.tasks)
        service = Service(quiet, url, log, messaging=False)
        await service.ready()
        idle_rss = service.peak_rss_mb()
        result, elapsed, create_lat = await shuffle_while_creating(url, issuer)
        peak = service.peak_rss_mb()
        service.stop()
        assert result["reassigned"] == args.tasks, result
        events = await backlog(db)
        print(
            f"shuffle: {result['reassigned']} open tasks, {args.workers} workers: "
            f"{elapsed:.2f} s; peak RSS of the service {peak:.0f} MB "
            f"(idle {idle_rss:.0f} MB); {events} events waiting in the outbox"
        )
        print(
            f"  {len(create_lat)} tasks created during the shuffle: worst latency "
            f"{max(create_lat) * 1000:.0f} ms, median {statistics.median(create_lat) * 1000:.0f} ms"
        )

        started = time.perf_counter()
        service = Service(env, url, log, messaging=True)
        await service.ready()
        connected = time.perf_counter() - started
        drained = await wait_for_empty_outbox(db, 900)
        service.stop()
        print(
            f"relay: {events} events published to NATS in {drained:.1f} s after the broker "
            f"connected = {events / drained:.0f} events/s (service start {connected:.1f} s)"
        )
    finally:
        await db.dispose()
        nats.stop()
        issuer.server.shutdown()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="open tasks to shuffle")
    parser.add_argument("--workers", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=2_000, help="creates (and completes)")
    parser.add_argument("--concurrency", type=int, default=8, help="HTTP requests in flight")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    asyncio.run(main(parser.parse_args()))
