"""The measured phases of ``bench/system.py``: throughput (closed loop), lag (open loop,
with the dashboards asked for meanwhile), and the shuffle on a fresh system."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import _system_checks as checks
from _system_client import Api, BenchError, Crew, sign_in_all
from _system_http import pool
from _system_load import DashboardLoad, Lifecycle, ShuffleSeed, closed_loop, open_loop
from _system_report import Ui, percentiles
from _system_resources import (
    NatsCounter,
    Watched,
    cpu_seconds,
    own_cpu_seconds,
    peak_rss,
    processes_named,
)
from _system_tap import Tap
from _system_target import Seed, Target

from ates.config import SERVICES

OpenSystem = Callable[[Path, Seed | None], AbstractAsyncContextManager[Target]]

# Per lifecycle, from the event catalog (used where the broker cannot count, RabbitMQ):
# published TaskCreated, TaskAssigned, TaskCompleted (tasks), TaskPriced and two
# TransactionApplied (billing); consumed by billing 3, analytics 6, notifications 2.
CATALOG_PUBLISHED, CATALOG_CONSUMED = 6, 11


def ceiling_shares(events: dict[str, Any], ceilings: dict[str, float]) -> dict[str, float]:
    """The system's event rates of phase 1 as shares of the machine's raw rates."""
    return {
        "published/s ÷ JetStream publishes/s": events["published_per_s"]
        / ceilings["jetstream_publishes_per_s"],
        "consumed/s ÷ JetStream publish→consume/s": events["consumed_per_s"]
        / ceilings["jetstream_publish_consume_per_s"],
        "(published + consumed)/s ÷ SQLite commits/s": events["per_s"]
        / ceilings["sqlite_commits_per_s"],
    }


def _shared(target: Target) -> list[Watched]:
    return [w for command, label in target.shared for w in processes_named(command, label)]


# --- phases -------------------------------------------------------------------------------


async def throughput(
    args: argparse.Namespace,
    ui: Ui,
    api: Api,
    crew: Crew,
    tap: Tap,
    counter: NatsCounter,
    target: Target,
    begin: checks.Start,
) -> tuple[dict[str, Any], list[Lifecycle]]:
    n = args.lifecycles
    counted = await counter.count()
    cpu, shared, own = cpu_seconds(target.watched), cpu_seconds(_shared(target)), own_cpu_seconds()
    started = time.perf_counter()
    done = await closed_loop(api, crew, n, args.in_flight, ui.bar("1 throughput: lifecycles", n))
    http_end = time.perf_counter()

    tasks = [lc.task for lc in done]
    books = tap.books
    booked = ui.bar("1 throughput: fees + rewards booked", 2 * n)
    billed = await tap.wait_for_bookings(
        tasks,
        ("assign_fee", "reward"),
        args.apply_timeout,
        "billing has not booked every fee and reward of phase 1",
        lambda done: booked(completed=done),
    )
    days = checks.days_of(books, tasks, begin.today)
    ui.say("waiting for analytics to show the same…")
    applied = await checks.wait_for_analytics(api, crew, books, days, args.apply_timeout)
    cpu_end, shared_end = cpu_seconds(target.watched), cpu_seconds(_shared(target))
    own_end, counted_end = own_cpu_seconds(), await counter.count()

    per_lc = {k: round((cpu_end.get(k, 0) - v) * 1000 / n, 2) for k, v in cpu.items()}
    rate = n / (applied - started)
    if counted is not None and counted_end is not None:
        moved = counted_end - counted
        published, consumed = moved.published / n, moved.consumed / n
        source = "counted by JetStream: stream messages and consumer deliveries"
        by_service = {s: round(v / n, 2) for s, v in sorted(moved.delivered.items())}
    else:
        published, consumed, by_service = CATALOG_PUBLISHED, CATALOG_CONSUMED, {}
        source = "from the event catalog"
    result: dict[str, Any] = {
        "lifecycles": n,
        "http_seconds": round(http_end - started, 2),
        "http_lifecycles_per_s": round(n / (http_end - started), 1),
        "billing_applied_seconds": round(billed - started, 2),
        "applied_seconds": round(applied - started, 2),
        "applied_lifecycles_per_s": round(rate, 1),
        "create_ms": percentiles([lc.created - lc.started for lc in done]),
        "complete_ms": percentiles([lc.completed - lc.created for lc in done]),
        "events": {
            "source": source,
            "published_per_lifecycle": round(published, 2),
            "consumed_per_lifecycle": round(consumed, 2),
            "consumed_per_lifecycle_by_service": by_service,
            "published_per_s": round(published * rate),
            "consumed_per_s": round(consumed * rate),
            "per_s": round((published + consumed) * rate),
        },
        "cpu_ms_per_lifecycle": per_lc,
        "shared_cpu_ms_per_lifecycle": {
            k: round((shared_end.get(k, 0) - v) * 1000 / n, 2) for k, v in shared.items()
        },
        "cpu_ms_system_total": round(sum(per_lc.values()), 2),
        "cpu_ms_bench": round((own_end - own) * 1000 / n, 2),
    }
    return result, done


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


async def lag(
    args: argparse.Namespace, ui: Ui, api: Api, crew: Crew, tap: Tap, rate: float, index: int
) -> tuple[dict[str, Any], list[Lifecycle], DashboardLoad]:
    dashboards = DashboardLoad(api, crew, args.dashboard_rate)
    dashboards.start()
    launched = max(1, round(rate * args.seconds))
    run = await open_loop(
        api,
        crew,
        rate,
        args.seconds,
        f"o{index}",
        ui.bar(f"2 lag at {rate:g}/s: lifecycles", launched),
    )
    await dashboards.stop()
    books = tap.books
    tasks = [lc.task for lc in run.lifecycles]
    booked = ui.bar(f"2 lag at {rate:g}/s: rewards booked", len(tasks))
    await tap.wait_for_bookings(
        tasks,
        ("reward",),
        args.apply_timeout,
        f"billing has not booked every reward of the {rate:g}/s phase",
        lambda done: booked(completed=done),
    )
    ordered = sorted(run.lifecycles, key=lambda lc: lc.started)
    lags = [min(m.arrived for m in books.of(lc.task, "reward")) - lc.completed for lc in ordered]
    quarter = max(1, len(ordered) // 4)
    first, last = _median(lags[:quarter]) or 0.0, _median(lags[-quarter:]) or 0.0
    took = [lc.seconds for lc in ordered]
    took_first, took_last = _median(took[:quarter]) or 0.0, _median(took[-quarter:]) or 0.0
    last_reward = max(min(m.arrived for m in books.of(t, "reward")) for t in tasks)
    http_end = max(lc.completed for lc in ordered)
    # kept up: neither the lag nor the HTTP side grew from the first quarter to the last
    steady_lag = last <= 2 * first + 0.1
    steady_http = took_last <= 2 * took_first + 0.1
    return (
        {
            "offered_per_s": rate,
            "seconds": args.seconds,
            "launched": len(ordered),
            "worst_launch_slip_ms": round(run.worst_launch_slip * 1000, 1),
            "http_lifecycles_per_s": round(len(ordered) / (http_end - run.window_start), 1),
            "lifecycle_ms": percentiles(took),
            "lag_ms": percentiles(lags),
            "lag_p50_first_quarter_ms": round(first * 1000, 1),
            "lag_p50_last_quarter_ms": round(last * 1000, 1),
            "drained_after_s": round(max(0.0, last_reward - run.window_end), 2),
            "lag_steady": steady_lag,
            "http_steady": steady_http,
            "kept_up": steady_lag and steady_http,
            "dashboard_ms": {s: percentiles(v) for s, v in dashboards.latencies.items()},
        },
        run.lifecycles,
        dashboards,
    )


async def shuffle(
    args: argparse.Namespace, ui: Ui, workdir: Path, open_system: OpenSystem
) -> tuple[dict[str, Any], list[checks.Check]]:
    seed = ShuffleSeed(args.shuffle_tasks, args.shuffle_workers)
    ui.say(f"shuffle: a fresh system with {seed.tasks:,} open tasks and {seed.workers:,} workers…")
    async with (
        open_system(workdir, seed) as target,
        pool(args.max_connections) as http,
        NatsCounter(target.broker_url, SERVICES) as counter,
        Tap(target.broker_url) as tap,
    ):
        api = Api(target.urls, http)
        if target.manager is None:
            raise BenchError("the shuffle phase needs a system the benchmark starts")
        admin, manager = await sign_in_all(api, [target.admin, target.manager])
        crew = Crew(admin, manager, {}, [])
        today, _ = await checks.billing_day(api, crew)
        before, cpu = await counter.count(), cpu_seconds(target.watched)
        pressed = time.perf_counter()
        answer = await api.json(manager, "POST", "tasks", "/api/tasks/shuffle")
        answered = time.perf_counter()
        books, ids = tap.books, seed.task_ids
        booked = ui.bar("4 shuffle: fees booked", len(ids))
        billed = await tap.wait_for_bookings(
            ids,
            ("assign_fee",),
            args.shuffle_timeout,
            "billing has not booked every fee of the shuffle",
            lambda done: booked(completed=done),
        )
        at_billed = await counter.count()
        days = checks.days_of(books, [], today)
        days = sorted({*days, *(m.business_date for m in books.movements.values())})
        ui.say("waiting for analytics to show the shuffle…")
        analysed = await checks.wait_for_analytics(api, crew, books, days, args.shuffle_timeout)
        at_analysed = await counter.count()
        spent = cpu_seconds(target.watched)
        doubled = [t for t in ids if len(books.of(t, "assign_fee")) != 1]
        sample = sorted(ids)[:200]
        prices = checks.Prices()
        await prices.fetch(api, crew, sample)
        wrong = [
            t for t in sample if books.of(t, "assign_fee")[0].debit_cents != prices.known[t][0]
        ]
        board = [(d, (await checks.billing_day(api, crew, d))[1]) for d in days]
        result: dict[str, Any] = {
            "tasks": seed.tasks,
            "workers": seed.workers,
            "reassigned": int(answer["reassigned"]),
            "http_seconds": round(answered - pressed, 2),
            "billing_seconds": round(billed - pressed, 2),
            "analytics_seconds": round(analysed - pressed, 2),
            "billing_reassignments_per_s": round(len(ids) / (billed - pressed)),
            "analytics_reassignments_per_s": round(len(ids) / (analysed - pressed)),
            "cpu_seconds": {k: round(spent.get(k, 0) - v, 1) for k, v in cpu.items()},
            "peak_rss_mb": {k: round(v) for k, v in peak_rss(target.watched).items()},
        }
        if before is not None and at_billed is not None and at_analysed is not None:
            result["billing_events_per_s"] = round(
                (at_billed - before).delivered.get("billing", 0) / (billed - pressed)
            )
            result["analytics_events_per_s"] = round(
                (at_analysed - before).delivered.get("analytics", 0) / (analysed - pressed)
            )
    found = [
        checks.Check(
            "shuffle: every seeded task reassigned",
            result["reassigned"] == len(ids),
            f"{result['reassigned']} reassigned of {len(ids)}",
        ),
        checks.Check(
            "shuffle: one fee per reassignment",
            not doubled,
            f"{len(doubled)} tasks with another number of fees",
        ),
        checks.Check(
            "shuffle: fees = billing's prices (a sample)",
            not wrong,
            f"{len(wrong)} of {len(sample)} differ",
        ),
        checks.Check(
            "shuffle: billing dashboard = its events",
            all(cents == books.earnings.get(d, 0) for d, cents in board),
            "; ".join(f"{d}: dashboard {c}, events {books.earnings.get(d, 0)}" for d, c in board),
        ),
    ]
    return result, found
