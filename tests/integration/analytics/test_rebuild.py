"""Rebuilding a read model (``ates replay analytics``): drop the projections, rebuild them
from the broker's log, get the same dashboard; a running service pauses meanwhile, then
carries on with the new consumer group, and no event is applied twice or lost."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import nats
import nats.js.errors
import pytest
from sqlalchemy import select

from ates.config import Settings
from ates.platform import migrations
from ates.platform.broker.kafka.server import LocalKafka
from ates.platform.broker.nats.server import EmbeddedNats
from ates.platform.db import Database
from ates.platform.events import Event
from ates.platform.rebuild import _begin, generation_consumer, read_generation, rebuild
from ates.platform.runtime import build_runtime
from ates.platform.tables import consumer_positions
from ates.services.analytics.models import DailyEarnings
from ates.services.registry import spec
from ates.testing.events import connected_broker, publish
from ates.testing.workload import Workload, simulate
from tests.integration.analytics.feed import (
    applied_count,
    expected_dashboard,
    shown_dashboard,
    snapshot,
    wait_applied,
)
from tests.support import TokenFactory, eventually, make_settings, service_harness

pytestmark = pytest.mark.integration

ZONE = "America/New_York"


@pytest.fixture
def ny_settings(tmp_path: Path, nats_url: str) -> Settings:
    return make_settings(tmp_path / "data", nats_url, timezone=ZONE)


def halves(w: Workload) -> tuple[list[Event], list[Event]]:
    middle = len(w.events) * 2 // 3
    return w.events[:middle], w.events[middle:]


async def group_exists(url: str, stream: str, group: str) -> bool:
    client = await nats.connect(url)
    try:
        await client.jetstream().consumer_info(stream, group)
        return True
    except nats.js.errors.NotFoundError:
        return False
    finally:
        await client.close()


async def test_a_rebuild_while_the_service_runs_gives_the_same_dashboard(
    ny_settings: Settings, tokens: TokenFactory
) -> None:
    url = ny_settings.broker_url or ""

    async def old_group_gone() -> None:
        for stream in ("ACCOUNTS", "TASKS", "BILLING"):
            assert not await group_exists(url, stream, "analytics")
            assert await group_exists(url, stream, "analytics-g2")

    await rebuild_while_running(ny_settings, tokens, old_group_gone)


@pytest.mark.rabbitmq
async def test_rebuild_while_the_service_runs_on_rabbitmq(
    tmp_path: Path, rabbitmq_url: str, tokens: TokenFactory
) -> None:
    settings = make_settings(tmp_path / "data", rabbitmq_url, timezone=ZONE)
    await rebuild_while_running(settings, tokens, None)


@pytest.mark.kafka
async def test_rebuild_while_the_service_runs_on_kafka(
    tmp_path: Path, own_kafka_server: LocalKafka, tokens: TokenFactory
) -> None:
    settings = make_settings(tmp_path / "data", own_kafka_server.url, timezone=ZONE)
    await rebuild_while_running(settings, tokens, None)


async def rebuild_while_running(
    settings: Settings,
    tokens: TokenFactory,
    check_groups: Callable[[], Awaitable[None]] | None,
) -> None:
    ny_settings = settings
    w = simulate(ZoneInfo(ZONE), date(2024, 3, 25), date(2024, 4, 2), seed=11)
    before, during = halves(w)
    url = ny_settings.broker_url or ""
    async with (
        service_harness("analytics", ny_settings, tokens) as analytics,
        connected_broker(url) as broker,
    ):
        await publish(broker, before, rng=random.Random(2), duplicates=0.1)
        await wait_applied(analytics.db, "analytics", len(before))

        # the CLI's side: its own runtime on the same database, its own connection
        cli = build_runtime(spec("analytics"), ny_settings, verifier=tokens.verifier())
        progress: list[tuple[int, int]] = []
        rebuilding = asyncio.create_task(
            rebuild(cli, broker, progress=lambda done, total: progress.append((done, total)))
        )
        await eventually(lambda: _started(progress))  # it reads the log from the start
        # while it rebuilds, life goes on: the rest of the workload is published
        await publish(broker, during, rng=random.Random(4))
        report = await rebuilding
        await cli.db.dispose()

        assert report.generation == 2
        assert report.log_size >= len(before)
        assert progress[0] == (0, report.log_size)
        assert progress[-1][0] == report.events >= len(before)
        if check_groups is not None:  # NATS: its log holds exactly the published messages
            assert report.events >= report.log_size
        # the running service moved to the new group and finishes the rest
        await wait_applied(analytics.db, "analytics-g2", len(w.events))
        async with analytics.db.reader() as session:
            state = await read_generation(session, "analytics")
        assert (state.live, state.rebuilding) == (2, None)
        assert await applied_count(analytics.db, "analytics") == 0  # old inbox forgotten
        if check_groups is not None:
            await check_groups()

        # every figure is the workload's own, nothing applied twice, nothing lost
        final = await snapshot(analytics.client, tokens, w)
        for day in range((w.last_day - w.first_day).days + 1):
            key = list(final)[day]
            assert shown_dashboard(final[key]) == expected_dashboard(w, date.fromisoformat(key)), (
                key
            )
        assert final["range"]["range"] is not None

        # a third generation: rebuilding again gives the same dashboard again
        cli = build_runtime(spec("analytics"), ny_settings, verifier=tokens.verifier())
        report = await rebuild(cli, broker)
        await cli.db.dispose()
        assert report.generation == 3
        await wait_applied(analytics.db, "analytics-g3", len(w.events))
        assert await snapshot(analytics.client, tokens, w) == final


async def test_a_rebuild_of_a_stopped_service_gives_the_same_snapshot(
    ny_settings: Settings, tokens: TokenFactory
) -> None:
    w = simulate(ZoneInfo(ZONE), date(2024, 3, 29), date(2024, 4, 2), seed=5)
    url = ny_settings.broker_url or ""
    async with connected_broker(url) as broker:
        await publish(broker, w.events, rng=random.Random(8), duplicates=0.2)
        async with service_harness("analytics", ny_settings, tokens) as analytics:
            await wait_applied(analytics.db, "analytics", len(w.events))
            first = await snapshot(analytics.client, tokens, w)
        # the service is stopped: the CLI rebuilds alone
        code, output = await rebuild_command(
            "analytics",
            ny_settings.data_dir,
            {**os.environ, "ATES_BROKER_URL": url, "ATES_TIMEZONE": ZONE},
        )
        assert code == 0, output
        assert "analytics rebuilt as generation 2" in output
        async with service_harness("analytics", ny_settings, tokens) as analytics:
            assert await applied_count(analytics.db, "analytics-g2") == len(w.events)
            assert await snapshot(analytics.client, tokens, w) == first
            # started after the rebuild, the service consumes with the new group
            late = simulate(ZoneInfo(ZONE), date(2024, 4, 3), date(2024, 4, 3), seed=9)
            await publish(broker, late.events)
            await wait_applied(analytics.db, "analytics-g2", len(w.events) + len(late.events))
            async with analytics.db.reader() as session:
                rows = (await session.execute(select(consumer_positions))).all()
            assert {(r.stream, r.generation) for r in rows} == {("live", 2)}


async def test_only_a_read_model_can_be_rebuilt(ny_settings: Settings) -> None:
    for service in ("billing", "nosuch"):
        code, output = await rebuild_command(
            service,
            ny_settings.data_dir,
            {**os.environ, "ATES_BROKER_URL": ny_settings.broker_url or ""},
        )
        assert code == 2, output
        assert ("cannot be rebuilt" if service == "billing" else "unknown service") in output


async def test_an_event_an_old_consumer_applies_after_the_reset_is_skipped(
    tmp_path: Path, tokens: TokenFactory
) -> None:
    """The race a rebuild must win: generation 1 is applying an event when the rebuild
    resets the projections. The guard sees the new generation and leaves the event to
    the rebuild, so it is applied once, not twice."""
    settings = make_settings(tmp_path / "data", None, timezone=ZONE)
    runtime = build_runtime(spec("analytics"), settings, verifier=tokens.verifier())
    await migrations.upgrade("analytics", runtime.db)
    w = simulate(ZoneInfo(ZONE), date(2024, 4, 1), date(2024, 4, 1), tasks_per_day=1)
    movements = [e for e in w.events if e.event_name == "TransactionApplied"]
    early, late = movements[0], movements[-1]
    old = generation_consumer(runtime, 1)
    assert await old.apply(early)
    assert runtime.spec.read_model_reset is not None
    assert await _begin(runtime, runtime.spec.read_model_reset) == 2
    assert await total_earnings(runtime.db) == 0  # the reset dropped the projections
    assert await old.apply(late)  # the old consumer was still running: recorded, skipped
    assert await total_earnings(runtime.db) == 0
    new = generation_consumer(runtime, 2)
    assert await new.apply(early)  # the rebuild applies both, once each
    assert await new.apply(late)
    assert not await new.apply(late)
    assert await total_earnings(runtime.db) == sum(map(earned, (early, late)))
    await runtime.db.dispose()


def earned(movement: Event) -> int:
    data = movement.data
    amounts: dict[str, int] = {"assign_fee": data["debit_cents"], "reward": -data["credit_cents"]}
    return amounts.get(data["kind"], 0)


async def total_earnings(db: Database) -> int:
    async with db.reader() as session:
        rows = (await session.execute(select(DailyEarnings))).scalars().all()
    return sum(r.fees_cents - r.rewards_cents for r in rows)


async def test_the_rebuild_finds_the_bundled_broker_or_starts_it(
    tmp_path: Path, nats_server: EmbeddedNats, tokens: TokenFactory
) -> None:
    """Without ATES_BROKER_URL the command uses the bundled NATS of the data directory:
    the one `ates up` runs if it is up, else it starts that server for the rebuild."""
    assert nats_server.data_dir == (tmp_path / "nats").resolve()  # the data dir's server
    settings = make_settings(tmp_path, None, timezone=ZONE)
    w = simulate(ZoneInfo(ZONE), date(2024, 4, 1), date(2024, 4, 2), seed=3)
    async with connected_broker(nats_server.url) as broker:
        await publish(broker, w.events)
    env = {**os.environ, "ATES_TIMEZONE": ZONE}
    env.pop("ATES_BROKER_URL", None)
    for generation in (2, 3):
        if generation == 3:
            nats_server.stop()  # the stack is down: the command starts the server itself
        code, output = await rebuild_command("analytics", tmp_path, env)
        assert code == 0, output
        assert f"analytics rebuilt as generation {generation}: {len(w.events)} events" in output
    runtime = build_runtime(spec("analytics"), settings, verifier=tokens.verifier())
    assert await applied_count(runtime.db, "analytics-g3") == len(w.events)
    assert await total_earnings(runtime.db) == sum(
        w.earnings(day) for day in (date(2024, 4, 1), date(2024, 4, 2))
    )
    await runtime.db.dispose()
    assert not any("nats-server" in line and str(tmp_path) in line for line in processes())


def processes() -> list[str]:
    import subprocess

    return subprocess.run(
        ["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True
    ).stdout.splitlines()


async def _started(progress: list[tuple[int, int]]) -> bool:
    return bool(progress)


async def rebuild_command(service: str, data_dir: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``ates replay SERVICE`` as an operator would; its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ates",
        "replay",
        service,
        "--data-dir",
        str(data_dir),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await asyncio.wait_for(process.communicate(), 120))[0].decode()
    assert process.returncode is not None  # communicate() waited for the exit
    return process.returncode, output
