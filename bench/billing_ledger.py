"""Billing's ledger under load: booking events, closing a day, verifying, reading by day.

    .venv/bin/python bench/billing_ledger.py [--tasks N] [--workers N] [--database-url URL]

What runs: a migrated billing database (a fresh SQLite file in WAL mode with
``synchronous=FULL`` unless ``--database-url`` names a PostgreSQL database), and the
real consumer path for every event — envelope parsing, schema validation, upcasting, the
inbox insert, the handler (price once, double-entry posting, cached balances,
``TransactionApplied`` into the outbox), the commit — one event at a time, as a consumer
applies them. No broker: the figures are billing's own cost per event.

Workload: ``--tasks`` tasks spread over ``--workers`` workers: each task created (v2) and
assigned; every fifth reassigned by a shuffle; every second completed. Then yesterday is
closed (every worker's balance looked at, the positive ones paid), ``ates billing verify``'s
checks run over the whole ledger, and the dashboard and audit-log queries are timed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ates.platform import migrations
from ates.platform.broker import Ack, Delivery, subject_for
from ates.platform.consumer import EventConsumer
from ates.platform.db import Database
from ates.platform.events import Event, default_registry
from ates.platform.uow import UnitOfWork
from ates.services.billing import commands, domain, queries, verify
from ates.services.billing.consumers import make_handlers


def workload(tasks: int, workers: int, when: datetime) -> list[Event]:
    rng = random.Random(6)
    people = [str(uuid.uuid4()) for _ in range(workers)]
    events: list[Event] = []

    def add(name: str, data: dict[str, object], version: int = 1) -> None:
        events.append(Event(name, version, data, "tasks", event_time=when))

    for n in range(tasks):
        task = str(uuid.uuid4())
        worker = rng.choice(people)
        add(
            "TaskCreated",
            {"public_id": task, "title": f"Task {n}", "jira_id": f"POPUG-{n}", "description": ""},
            2,
        )
        assigned = {
            "task_public_id": task,
            "assignee_public_id": worker,
            "previous_assignee_public_id": None,
            "reason": "created",
            "shuffle_id": None,
        }
        add("TaskAssigned", assigned)
        if n % 5 == 0:
            previous, worker = worker, rng.choice(people)
            add(
                "TaskAssigned",
                {
                    **assigned,
                    "assignee_public_id": worker,
                    "previous_assignee_public_id": previous,
                    "reason": "shuffle",
                    "shuffle_id": str(uuid.uuid4()),
                },
            )
        if n % 2 == 0:
            add(
                "TaskCompleted",
                {
                    "task_public_id": task,
                    "assignee_public_id": worker,
                    "completed_at": when.isoformat(),
                },
            )
    return events


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(args: argparse.Namespace) -> None:
    url = args.database_url
    if url is None:
        folder = Path(tempfile.mkdtemp(prefix="billing-bench-"))
        url = f"sqlite+aiosqlite:///{folder / 'billing.db'}"
    db = Database(url)
    await migrations.upgrade("billing", db)
    registry = default_registry()
    consumer = EventConsumer("billing", db, make_handlers(random.Random(1)), registry)

    yesterday = datetime.now(UTC) - timedelta(days=1)
    events = workload(args.tasks, args.workers, yesterday)
    deliveries = [
        Delivery(
            body=e.to_json().encode(),
            subject=subject_for(registry.domain_of(e.event_name), e.event_name),
            attempt=1,
        )
        for e in events
    ]
    started = time.perf_counter()
    for delivery in deliveries:
        assert await consumer.deliver_one(delivery) == Ack()
    booking = time.perf_counter() - started
    print(
        f"booked {len(events):,} events ({args.tasks:,} tasks, {args.workers:,} workers) "
        f"in {booking:.1f} s = {len(events) / booking:,.0f} events/s"
    )

    started = time.perf_counter()
    async with UnitOfWork(db, "billing") as uow:
        closed = await commands.close_day(
            uow, domain.business_date(yesterday, UTC), now=datetime.now(UTC)
        )
    print(
        f"closed {closed.business_date} in {time.perf_counter() - started:.2f} s: "
        f"{len(closed.payouts):,} payouts of {args.workers:,} accounts"
    )

    started = time.perf_counter()
    async with db.reader() as session:
        problems = await verify.problems(session)
    print(f"verify: {len(problems)} problems in {time.perf_counter() - started:.2f} s")

    day = domain.business_date(yesterday, UTC)
    async with db.reader() as session:
        started = time.perf_counter()
        for _ in range(20):
            await queries.earnings_by_day(session, domain.day_range(day, 30))
        dashboard = (time.perf_counter() - started) / 20
        account = (await queries.people(session, limit=1))[0]
        started = time.perf_counter()
        for _ in range(20):
            log = await queries.day_log(session, account, day)
        audit = (time.perf_counter() - started) / 20
    print(
        f"dashboard (30 days): {dashboard * 1000:.1f} ms; one account's day "
        f"({len(log)} movements): {audit * 1000:.1f} ms"
    )
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=1_000)
    parser.add_argument("--database-url", default=None, help="postgresql+asyncpg://… (fresh)")
    asyncio.run(main(parser.parse_args()))
