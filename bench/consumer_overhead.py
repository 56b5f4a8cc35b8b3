"""What the platform adds per consumed event: ``EventConsumer`` on batches of billing events.

    .venv/bin/python bench/consumer_overhead.py [--batches N] [--size 100] [--tracing off|memory]

What runs: a migrated billing SQLite database (WAL, ``synchronous=FULL``) and the real
consumer path for each batch — envelope parsing, validation, the inbox, billing's
set-based booking, its ``TransactionApplied`` and ``TaskPriced`` into the outbox, one
commit — with no broker. Every event carries a W3C ``traceparent`` in its envelope, as
when a request came with one. The figure is µs of wall time and of process CPU time per
event, the median of ``--rounds`` runs, and the fastest run's CPU time (the least disturbed by
other work on the machine); compare runs of two trees, interleaved, on a quiet machine.

``--tracing memory`` runs the same with the OpenTelemetry SDK on (spans to an in-memory
exporter): what tracing costs when an operator turns it on; add ``--unsampled`` and
``OTEL_TRACES_SAMPLER=parentbased_traceidratio`` for the events of traces not sampled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from ates.platform import migrations
from ates.platform.broker import Ack, Delivery, subject_for
from ates.platform.consumer import EventConsumer
from ates.platform.db import Database
from ates.platform.events import Event, default_registry
from ates.services.billing.consumers import make_handlers


def batch_events(
    size: int, workers: list[str], when: datetime, sampled: bool = True
) -> list[Event]:
    """``size`` task events: a third created, a third assigned, a third completed."""
    events: list[Event] = []
    while len(events) < size:
        task, worker = str(uuid.uuid4()), random.choice(workers)
        trace = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-{'01' if sampled else '00'}"
        events += [
            Event(
                "TaskCreated",
                2,
                {"public_id": task, "title": "Bench", "jira_id": None, "description": ""},
                "tasks",
                event_time=when,
                trace=trace,
            ),
            Event(
                "TaskAssigned",
                1,
                {
                    "task_public_id": task,
                    "assignee_public_id": worker,
                    "previous_assignee_public_id": None,
                    "reason": "created",
                    "shuffle_id": None,
                },
                "tasks",
                event_time=when,
                trace=trace,
            ),
            Event(
                "TaskCompleted",
                1,
                {
                    "task_public_id": task,
                    "assignee_public_id": worker,
                    "completed_at": when.isoformat().replace("+00:00", "Z"),
                },
                "tasks",
                event_time=when,
                trace=trace,
            ),
        ]
    return events[:size]


async def run_once(args: argparse.Namespace, folder: Path) -> tuple[float, float]:
    db = Database(f"sqlite+aiosqlite:///{folder / f'billing-{uuid.uuid4().hex}.db'}")
    await migrations.upgrade("billing", db)
    registry = default_registry()
    options = {}
    if args.tracing == "memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from ates.platform.tracing import Tracing

        options["tracing"] = Tracing.in_memory("billing", InMemorySpanExporter())
    consumer = EventConsumer("billing", db, make_handlers(random.Random(1)), registry, **options)
    workers = [str(uuid.uuid4()) for _ in range(50)]
    when = datetime.now(UTC)
    batches = [
        [
            Delivery(
                body=e.to_json().encode(),
                subject=subject_for(registry.domain_of(e.event_name), e.event_name),
                attempt=1,
            )
            for e in batch_events(args.size, workers, when, sampled=not args.unsampled)
        ]
        for _ in range(args.batches + 2)
    ]
    for batch in batches[:2]:  # warm up: statement caches, the accounts
        await consumer(batch)
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches[2:]:
        outcomes = await consumer(batch)
        assert all(isinstance(o, Ack) for o in outcomes)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await db.dispose()
    events = args.batches * args.size
    return wall / events * 1e6, cpu / events * 1e6


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="consumer-overhead-"))
    walls, cpus = [], []
    for _ in range(args.rounds):
        wall, cpu = await run_once(args, folder)
        walls.append(wall)
        cpus.append(cpu)
    load = os.getloadavg()[0]
    print(
        f"tracing {args.tracing}: {statistics.median(walls):.1f} µs wall, "
        f"{statistics.median(cpus):.1f} µs CPU per event, fastest run {min(cpus):.1f} µs CPU "
        f"(median of {args.rounds} runs of {args.batches} batches of {args.size}; "
        f"load average {load:.2f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tracing", choices=("off", "memory"), default="off")
    parser.add_argument(
        "--unsampled",
        action="store_true",
        help="events arrive in traces the edge did not sample (trace flags 00): what "
        "most events cost under OTEL_TRACES_SAMPLER=parentbased_traceidratio",
    )
    asyncio.run(main(parser.parse_args()))
