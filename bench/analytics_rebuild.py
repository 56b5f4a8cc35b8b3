"""Benchmark of rebuilding analytics (``ates replay analytics``): how fast it reads the log.

    .venv/bin/python bench/analytics_rebuild.py [--days 10] [--tasks-per-day 100]

A simulated company's events (``ates.testing.workload``, as in the integration tests:
people, tasks, shuffles, completions, billing's movements and day closes) are published to
a bundled NATS server
(``sync_interval: always``); an analytics database is migrated; then the rebuild runs
exactly as the CLI runs it (``ates.platform.rebuild.rebuild``: reset, consume every domain
with a new group through the inbox, hand over) and is timed. The rebuilt dashboard is
checked against the workload's own figures for every day.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ates.config import Settings
from ates.platform import migrations
from ates.platform.broker.nats.server import EmbeddedNats
from ates.platform.rebuild import rebuild
from ates.platform.runtime import build_runtime
from ates.services.analytics import queries
from ates.services.registry import spec
from ates.testing.events import connected_broker, publish
from ates.testing.workload import simulate


async def main(days: int, tasks_per_day: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="ates-bench-rebuild-"))
    zone = ZoneInfo("UTC")
    last = datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    started = time.perf_counter()
    w = simulate(zone, first, last, tasks_per_day=tasks_per_day)
    print(
        f"workload: {len(w.events):,} events over {days} days "
        f"({time.perf_counter() - started:.0f} s to simulate)",
        flush=True,
    )
    nats = EmbeddedNats(work / "nats")
    url = nats.start()
    try:
        settings = Settings(data_dir=work / "var", broker_url=url, auth_url="http://issuer.test")
        async with connected_broker(url) as broker:
            started = time.perf_counter()
            await publish(broker, w.events)
            took = time.perf_counter() - started
            print(f"published in {took:.1f} s ({len(w.events) / took:,.0f} events/s)", flush=True)
            runtime = build_runtime(spec("analytics"), settings)  # verifies no token
            await migrations.upgrade("analytics", runtime.db)
            last_shown = [0.0]

            def progress(done: int, total: int) -> None:
                if time.monotonic() - last_shown[0] > 5:
                    last_shown[0] = time.monotonic()
                    print(f"  {done:,} / {total:,}", flush=True)

            report = await rebuild(runtime, broker, progress=progress)
            rate = report.events / report.seconds
            print(
                f"rebuild: {report.events:,} events (log {report.log_size:,}) in "
                f"{report.seconds:.1f} s = {rate:,.0f} events/s, including the 1.5 s it "
                "waits to be sure the log is quiet",
                flush=True,
            )
            async with runtime.db.reader() as session:
                day = first
                while day <= last:
                    board = await queries.dashboard(session, day, zone)
                    assert board.management_earnings_cents == w.earnings(day), day
                    top = w.top(day, day)
                    assert (board.day_top and board.day_top.task_public_id) == (
                        top and top.task_public_id
                    ), day
                    day += timedelta(days=1)
            print("rebuilt dashboard checked against the workload: ok")
            await runtime.db.dispose()
    finally:
        nats.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--tasks-per-day", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.days, args.tasks_per_day))
