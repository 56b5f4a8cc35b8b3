"""Crashes in the middle of a stream of work, on the production topology (issue 16):
``kill -9`` of a billing process in the middle of a batch, on RabbitMQ and on Kafka, and
of the Kafka broker itself. No money effect may be lost or doubled by either.

The topology is the whole-system flow's (``tests/e2e/production.py``: PostgreSQL, two
processes of each consuming service). A steady stream of work runs through the public API
(``Flow.work``: tasks created, shuffled, completed, round after round) while the test

- holds billing's ledger table for a moment (:func:`ledger_held`: writes wait, reads go
  on) until both billing processes wait inside a batch — events taken from the broker,
  transaction open, nothing committed or acknowledged — and kills one of them with
  SIGKILL there; lets the stream run on until billing has booked more without it, then
  starts it again on its port (as an orchestrator would) until it applies its share again;
- or, with billing likewise inside a batch, kills the Kafka broker with SIGKILL (billing
  then commits its batch but not its offsets, so the same events come again later), lets
  the work go on until events pile up in the tasks service's outbox, then starts the
  broker again on the same ports and data, until billing books again.

Then the work stops and the books must add up exactly (``tests/e2e/books.py``): each
``TaskAssigned`` the tasks service produced is one fee, each completion one reward, at the
task's one price; analytics shows billing's earnings and debtors; ``ates billing verify``
is clean, no dead letter anywhere, every outbox drained, every surviving process stops
cleanly. Waits are on conditions, never on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.books import (
    applied,
    books_add_up,
    operator_sees_clean_books,
    stops_cleanly,
    today_of,
)
from tests.e2e.production import KAFKA, Production, TopologyBroker, production
from tests.e2e.workday import Flow, staffed
from tests.support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(600)]

BILLED_EVENTS = ("TaskAssigned", "TaskCompleted")  # what billing books money for
BUSY = 20  # events a process has applied before it is killed: it is in the stream
MORE = 30  # movements booked after a crash before the test goes on
WAIT = 120.0  # seconds any one condition may take on a busy two-core machine


async def test_a_billing_process_killed_mid_batch_loses_and_doubles_no_money(
    postgres_dsn: str, production_broker: TopologyBroker, tmp_path: Path
) -> None:
    async with crash_scene(postgres_dsn, production_broker, tmp_path) as scene:
        topology = scene.topology
        victim = topology.replicas("billing")[0]

        async def busy() -> bool:
            done = await applied(topology, "billing", *BILLED_EVENTS)
            return done.get(victim.name, 0) >= BUSY

        await scene.until(busy)
        async with ledger_held(topology):
            # both billing processes are inside a batch: events taken from the broker,
            # the transaction open, nothing committed or acknowledged
            await scene.until(lambda: waiting_on_locks(topology, "billing", 2))
            at_kill = await booked(topology)
            topology.kill(victim)
            scene.note(at_kill)

        # the stream goes on; billing's other process books while this one is gone
        await scene.until(lambda: booked_beyond(topology, at_kill + MORE))
        replacement = topology.restart(victim)
        await topology.wait_healthy()

        async def sharing() -> bool:
            done = await applied(topology, "billing", *BILLED_EVENTS)
            return done.get(replacement.name, 0) > 0

        # it takes its share of the stream again (RabbitMQ: the queue's competing
        # consumers; Kafka: partitions given back by a rebalance)
        await scene.until(sharing)


@pytest.mark.parametrize("production_broker", [KAFKA], indirect=True)
async def test_the_kafka_broker_killed_mid_stream_loses_and_doubles_no_money(
    postgres_dsn: str, production_broker: TopologyBroker, tmp_path: Path
) -> None:
    kafka = production_broker.kafka
    assert kafka is not None
    # The services log the broker's absence (aiokafka logs some of it as errors).
    async with crash_scene(postgres_dsn, production_broker, tmp_path, errors=True) as scene:
        topology = scene.topology
        await scene.until(lambda: booked_beyond(topology, BUSY))
        ports = kafka.port, kafka.controller_port
        async with ledger_held(topology):
            # billing is inside a batch when the broker dies: it commits the batch to its
            # database afterwards but cannot commit its offsets, so the broker hands the
            # same events out again once it is back (the inbox must skip them)
            await scene.until(lambda: waiting_on_locks(topology, "billing", 1))
            kafka.kill()
            scene.note(await booked(topology))

        # the work goes on without a broker: its events wait in the tasks outbox
        async def piling_up() -> bool:
            return await unpublished(topology, "tasks") >= 10

        await scene.until(piling_up)
        scene.report["waiting in the tasks outbox"] = await unpublished(topology, "tasks")
        await asyncio.to_thread(kafka.start)  # the same ports, the same data
        assert (kafka.port, kafka.controller_port) == ports
        at_restart = await booked(topology)

        # the stream flows again: what waited, and what came after
        await scene.until(lambda: booked_beyond(topology, at_restart + MORE))


# --- the scene ------------------------------------------------------------------------------


@dataclass
class Scene:
    """The topology, the day's people, and the stream of work running in the background."""

    topology: Production
    flow: Flow
    work: asyncio.Task[int]
    report: dict[str, Any]

    async def until(self, check: Callable[[], Awaitable[bool]]) -> None:
        """Wait for ``check``; fail at once if the stream of work itself failed."""

        async def either() -> bool:
            if self.work.done():
                self.work.result()  # raises what stopped the work
                raise AssertionError("the work stopped before the crash was over")
            return await check()

        await eventually(either, timeout=WAIT, interval=0.2)

    def note(self, booked_then: int) -> None:
        """How far the stream had come when the crash happened (printed)."""
        self.report["booked at the crash"] = booked_then
        self.report["assignments at the crash"] = self.flow.assignments


@contextlib.asynccontextmanager
async def crash_scene(
    postgres_dsn: str, broker: TopologyBroker, workdir: Path, *, errors: bool = False
) -> AsyncIterator[Scene]:
    """The topology up and staffed and the stream of work running while the test's body
    runs; then the work stops and the books must add up exactly, the operator's view be
    clean, and every surviving process stop cleanly (having logged no error, unless
    ``errors``)."""
    seed = random.randrange(1 << 32)  # who creates which task, what gets done (printed)
    report: dict[str, Any] = {"broker": broker.kind, "seed": seed}
    started = time.monotonic()
    async with production(postgres_dsn, broker, workdir) as topology:
        try:
            async with staffed(topology, random.Random(seed)) as flow:
                stop = asyncio.Event()
                work = asyncio.create_task(flow.work(stop))
                try:
                    yield Scene(topology, flow, work, report)
                finally:
                    stop.set()
                    report["rounds"] = await work
                books = await books_add_up(flow, await today_of(flow))
                report.update(
                    tasks=len(flow.tasks),
                    assignments=len(books.expected),
                    completed=len(flow.done_by),
                    earnings_cents=books.earnings,
                )
            await operator_sees_clean_books(topology)
            await stops_cleanly(topology, errors_allowed=errors)
        except BaseException:
            # shown by pytest with the failure: where events stand, what each process printed
            with contextlib.suppress(Exception):
                report["where events wait"] = await where_events_wait(topology)
            print(f"crash {report}\n{topology.output(tail=60)}")
            raise
    report["seconds"] = round(time.monotonic() - started, 1)
    print(f"crash {report}")


@contextlib.asynccontextmanager
async def ledger_held(topology: Production) -> AsyncIterator[None]:
    """Billing's ledger (its ``transactions`` table) locked against writes for a moment;
    reads go on. A batch that books a movement waits inside its open transaction, its
    events taken from the broker and not yet acknowledged, until the lock goes: a crash
    meanwhile is a crash in the middle of a batch, every time."""
    connection = await asyncpg.connect(topology.dsn("billing"))
    try:
        async with connection.transaction():
            await connection.execute("LOCK TABLE transactions IN EXCLUSIVE MODE")
            yield
    finally:
        await connection.close()


async def waiting_on_locks(topology: Production, service: str, count: int) -> bool:
    """Whether at least ``count`` sessions of the service's database wait for a lock."""
    rows = await topology.query(
        service,
        "SELECT count(*) AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    return int(rows[0]["n"]) >= count


async def booked(topology: Production) -> int:
    """Movements billing has booked so far (fees, rewards)."""
    rows = await topology.query("billing", "SELECT count(*) AS n FROM transactions")
    return int(rows[0]["n"])


async def booked_beyond(topology: Production, count: int) -> bool:
    return await booked(topology) >= count


async def unpublished(topology: Production, service: str) -> int:
    rows = await topology.query(
        service, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"
    )
    return int(rows[0]["n"])


async def where_events_wait(topology: Production) -> dict[str, Any]:
    """Unpublished outbox rows of the producing services and each billing process's view
    of its consumer groups' lag at the broker: where a stuck stream is stuck."""
    found: dict[str, Any] = {
        f"{service} outbox": await unpublished(topology, service) for service in ("auth", "tasks")
    }
    async with httpx.AsyncClient(timeout=10) as http:
        for proc in topology.replicas("billing"):
            text = (await http.get(f"{proc.url}/metrics")).text
            found[f"{proc.name} lag"] = {
                sample.labels["domain"]: sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "ates_consumer_lag"
            }
    found["TaskAssigned: outbox / billing inbox / dead letters"] = [
        (await topology.query(service, sql))[0]["n"]
        for service, sql in (
            ("tasks", "SELECT count(*) AS n FROM outbox WHERE event_name = 'TaskAssigned'"),
            ("billing", "SELECT count(*) AS n FROM inbox WHERE event_name = 'TaskAssigned'"),
            ("billing", "SELECT count(*) AS n FROM dead_letters"),
        )
    ]
    if topology.broker.kind == "kafka":
        found["TaskAssigned in the Kafka log"] = await kafka_task_assigned(topology.broker.url)
    return found


async def kafka_task_assigned(url: str) -> dict[str, int]:
    """TaskAssigned records in the tasks topic: all of them, and distinct event ids."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.structs import TopicPartition

    from ates.platform.broker.kafka.adapter import bootstrap_servers
    from ates.platform.broker.kafka.topology import EVENT_ID, EVENT_NAME, Names

    topic = Names("ates").domain_topic("tasks")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(url))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(url))
    await reader.start()
    try:
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        records, ids = 0, set[bytes | None]()

        async def behind() -> bool:
            return any([await reader.position(tp) < ends[tp] for tp in tps])

        while await behind():
            for batch in (await reader.getmany(timeout_ms=1000)).values():
                for record in batch:
                    headers = dict(record.headers or ())
                    if headers.get(EVENT_NAME) == b"TaskAssigned":
                        records += 1
                        ids.add(headers.get(EVENT_ID))
        return {"records": records, "event ids": len(ids)}
    finally:
        await reader.stop()
