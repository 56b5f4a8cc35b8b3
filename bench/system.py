"""``ates bench system``: the whole system, through its public API, end to end.

    ates bench system [--lifecycles 2000] [--in-flight 16] [--rates 5,50,100] [--seconds 20]
                      [--workers 20] [--shuffle-tasks 100000 --shuffle-workers 1000]
                      [--production [--broker rabbitmq|kafka]
                       | --auth-url … --broker-url … --admin … ]
                      [--quick] [--json]

What it starts: by default the embedded stack as ``ates up`` does (``ates.stack``), in a
temporary data directory on free ports; ``--production`` the production topology on this
machine's PostgreSQL and RabbitMQ (two processes of each consuming service), or with
``--broker kafka`` on a Kafka broker the benchmark starts itself; with
``--auth-url`` etc. nothing: it drives a deployment already running. ``ATES_*`` settings
in the environment other than placement (data dir, ports, URLs) reach the services.

What it does, as a user would: signs in an admin, a manager and ``--workers`` workers
through auth's OAuth flow (code + PKCE), creating the workers through ``POST /api/users``;
taps billing's ``TransactionApplied`` events on the broker; then

1. throughput, closed loop: ``--lifecycles`` task lifecycles (the manager creates a task,
   its assignee completes it), ``--in-flight`` at a time; lifecycles/s on the HTTP side
   and fully applied (billing booked every fee and reward, analytics shows the same),
   CPU per lifecycle of every process, events per lifecycle counted by the broker;
2. lag, open loop: at each of ``--rates`` lifecycles/s for ``--seconds``, launched on a
   timer; lag from the completion's HTTP answer to billing's reward on the broker;
3. dashboards: billing's and analytics' ``GET /api/dashboard`` during phase 2;
4. shuffle (with ``--shuffle-tasks``): on a fresh stack, open tasks seeded into the tasks
   database, Shuffle pressed as manager, seconds until billing and analytics applied it;
5. ceilings of this machine, same run: raw JetStream publishes and publish → consume with
   the bundled server, SQLite commits.

Money is checked throughout (``bench/_system_checks.py``); if it does not add up the run
says so and exits 1. Figures and their meaning: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import sys
import tempfile
import traceback
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import _system_checks as checks
from _system_ceilings import measure as measure_ceilings
from _system_client import Api, BenchError, Crew, Login, gather_crew, retire, wait_until_known
from _system_http import pool
from _system_load import DashboardLoad, Lifecycle
from _system_phases import ceiling_shares, lag, shuffle, throughput
from _system_report import Ui, percentiles, render
from _system_resources import NatsCounter, load_average, machine, peak_rss
from _system_tap import Tap
from _system_target import Seed, Target, embedded, running, settings_env
from rich.console import Console

from ates.config import SERVICES

# --- the system under test --------------------------------------------------------------


def _urls(value: str | None) -> list[str]:
    return [u.strip() for u in (value or "").split(",") if u.strip()]


def _logins(path: Path | None) -> list[Login]:
    if path is None:
        return []
    rows = (line.split("\t") for line in path.read_text().splitlines())
    return [Login(*row) for row in rows if len(row) == 3]


@contextlib.asynccontextmanager
async def system(
    args: argparse.Namespace, workdir: Path, seed: Seed | None
) -> AsyncIterator[Target]:
    if args.production:
        from _system_production import production

        async with production(workdir, seed, broker=args.broker) as target:
            yield target
    elif args.auth_url:
        known = _logins(args.logins)
        admin = next((login for login in known if login.role == "admin"), None)
        if args.admin:
            admin = Login(args.admin, "admin", args.admin_password or "")
        if admin is None or not args.broker_url:
            raise BenchError("a running deployment needs --broker-url and --admin (or --logins)")
        pids: dict[str, list[int]] = {}
        for item in args.pid:
            service, _, pid = item.partition("=")
            pids.setdefault(service, []).append(int(pid))
        urls = {
            s: _urls(getattr(args, f"{s}_url")) for s in ("auth", "tasks", "billing", "analytics")
        }
        async with running(urls, args.broker_url, admin, known, pids) as target:
            yield target
    else:
        async with embedded(workdir, seed) as target:
            yield target


# --- the run ------------------------------------------------------------------------------


async def run(args: argparse.Namespace, ui: Ui, doc: dict[str, Any], workdir: Path) -> None:
    if args.ceilings:
        ui.say("ceilings: raw JetStream and SQLite on this machine…")
        doc["ceilings"] = await measure_ceilings(args.ceiling_messages, args.ceiling_seconds)
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    async with (
        system(args, workdir / "main", None) as target,
        pool(args.max_connections) as http,
    ):
        doc["mode"] = target.mode
        doc["http_client"] = http.name
        api = Api(target.urls, http)
        ui.say(f"signing in {args.workers} workers, a manager and the admin…")
        crew = await gather_crew(
            api, target.admin, target.manager, target.known, args.workers, prefix
        )
        try:
            await wait_until_known(api, crew, args.apply_timeout)
            await phases(args, ui, doc, target, api, crew)
        finally:
            if target.mode == "urls":
                await retire(api, crew)
        doc["peak_rss_mb"] = {k: round(v) for k, v in peak_rss(target.watched).items()}
    if args.shuffle_tasks:
        doc["shuffle"], found = await shuffle(
            args, ui, workdir / "shuffle", lambda folder, seed: system(args, folder, seed)
        )
        doc["checks"] += [asdict(c) for c in found]


async def phases(
    args: argparse.Namespace, ui: Ui, doc: dict[str, Any], target: Target, api: Api, crew: Crew
) -> None:
    """Phases 1-3 on one system, the money checked after the first and after the last."""
    async with (
        Tap(target.broker_url) as tap,
        NatsCounter(target.broker_url, SERVICES) as counter,
    ):
        begin = await checks.start(api, crew)
        prices = checks.Prices()
        everything: list[Lifecycle] = []
        if args.lifecycles:
            doc["throughput"], done = await throughput(
                args, ui, api, crew, tap, counter, target, begin
            )
            everything += done
            found = await checks.verify(api, crew, tap.books, done, prices, begin)
            doc["checks"] += [asdict(c) for c in found]
            if doc["ceilings"]:
                doc["throughput"]["share_of_ceilings"] = ceiling_shares(
                    doc["throughput"]["events"], doc["ceilings"]
                )
        loads: list[DashboardLoad] = []
        for index, rate in enumerate(args.rates):
            result, done, dashboards = await lag(args, ui, api, crew, tap, rate, index)
            doc["lag"].append(result)
            loads.append(dashboards)
            everything += done
        if args.rates:
            doc["dashboards"] = {
                s: percentiles([v for d in loads for v in d.latencies[s]])
                for s in ("billing", "analytics")
            }
            days = checks.days_of(tap.books, (lc.task for lc in everything), begin.today)
            await checks.wait_for_analytics(api, crew, tap.books, days, args.apply_timeout)
            found = await checks.verify(api, crew, tap.books, everything, prices, begin)
            doc["checks"] += [{**asdict(c), "name": f"all phases: {c.name}"} for c in found]
        doc["tap"] = {"events": len(tap.books.movements), "redelivered": tap.books.redelivered}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ates bench system",
        description="The whole system through its public API, end to end; see docs/benchmarks.md.",
    )
    add = parser.add_argument
    add("--lifecycles", type=int, help="phase 1: lifecycles, closed loop (default 2000)")
    add("--in-flight", type=int, default=16, help="phase 1: lifecycles at a time")
    add("--rates", help="phase 2: offered lifecycles/s, comma-separated (default 5,50,100)")
    add("--seconds", type=float, help="phase 2: seconds at each rate (default 20)")
    add("--workers", type=int, default=20, help="active workers (created as needed)")
    add("--dashboard-rate", type=float, default=2.0, help="dashboard requests/s per service")
    add("--shuffle-tasks", type=int, help="phase 4: open tasks to shuffle (default: no phase 4)")
    add("--shuffle-workers", type=int, default=1000, help="phase 4: workers seeded")
    add("--apply-timeout", type=float, default=900, help="seconds to wait for the pipeline")
    add("--shuffle-timeout", type=float, default=3600, help="seconds to wait for a shuffle")
    add("--max-connections", type=int, default=128, help="HTTP connections of the generator")
    add("--no-ceilings", dest="ceilings", action="store_false", help="skip phase 5")
    add("--ceiling-messages", type=int, help="phase 5: messages (default 20000)")
    add("--ceiling-seconds", type=float, help="phase 5: seconds of SQLite commits (default 5)")
    add("--quick", action="store_true", help="a smoke run of about a minute")
    add("--json", action="store_true", help="print one JSON document instead of tables")
    add("--keep", action="store_true", help="keep the data and logs (kept anyway on failure)")
    mode = parser.add_argument_group("the system (default: a fresh embedded stack)")
    mode.add_argument(
        "--production",
        action="store_true",
        help="PostgreSQL + RabbitMQ of this machine, two processes per consumer",
    )
    mode.add_argument(
        "--broker",
        choices=("rabbitmq", "kafka"),
        default="rabbitmq",
        help="with --production: the machine's RabbitMQ, or a Kafka broker of the bench's own",
    )
    for service in ("auth", "tasks", "billing", "analytics"):
        mode.add_argument(f"--{service}-url", help=f"a running {service} (comma: several)")
    mode.add_argument("--broker-url", help="its broker (nats://…, amqp://… or kafka://…)")
    mode.add_argument("--admin", help="an admin's username")
    mode.add_argument("--admin-password")
    mode.add_argument("--logins", type=Path, help="username<TAB>role<TAB>password lines")
    mode.add_argument("--pid", action="append", default=[], help="SERVICE=PID, to measure it")
    args = parser.parse_args(argv)
    if args.broker != "rabbitmq" and not args.production:
        parser.error("--broker chooses the broker of --production")
    quick = args.quick
    args.lifecycles = args.lifecycles if args.lifecycles is not None else (200 if quick else 2000)
    rates = args.rates if args.rates is not None else ("5,20" if quick else "5,50,100")
    args.rates = [float(r) for r in rates.split(",") if r.strip()]
    args.seconds = args.seconds if args.seconds is not None else (5.0 if quick else 20.0)
    args.ceiling_messages = args.ceiling_messages or (5000 if quick else 20000)
    args.ceiling_seconds = args.ceiling_seconds or (2.0 if quick else 5.0)
    if quick and args.shuffle_tasks is None:
        args.shuffle_tasks = 0
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    # Everything printed while the system runs (services, migrations, warnings) goes to
    # stderr; stdout carries the report alone, so --json output can be piped.
    report: TextIO = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    ui = Ui()
    workdir = Path(tempfile.mkdtemp(prefix="ates-bench-system-"))
    for part in ("main", "shuffle"):
        (workdir / part).mkdir()
    doc: dict[str, Any] = {
        "bench": "system",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["ates", "bench", "system", *argv]),
        "mode": None,
        "machine": machine(),
        "load_average": {"start": load_average()},
        "settings": {
            "lifecycles": args.lifecycles,
            "in_flight": args.in_flight,
            "rates": args.rates,
            "seconds": args.seconds,
            "workers": args.workers,
            "dashboard_per_second": args.dashboard_rate,
            "shuffle_tasks": args.shuffle_tasks,
            "shuffle_workers": args.shuffle_workers,
            "services_env": settings_env(),
        },
        "ceilings": None,
        "throughput": None,
        "lag": [],
        "dashboards": None,
        "shuffle": None,
        "peak_rss_mb": None,
        "checks": [],
        "error": None,
    }
    try:
        with ui.progress:
            asyncio.run(run(args, ui, doc, workdir))
    except BenchError as error:
        doc["error"] = str(error)
    except KeyboardInterrupt:
        doc["error"] = "interrupted"
    except Exception as error:  # a bug here or a crash there: still report what was measured
        traceback.print_exc()
        doc["error"] = f"unexpected {error!r} (traceback above)"
    doc["load_average"]["end"] = load_average()
    doc["ok"] = doc["error"] is None and all(c["ok"] for c in doc["checks"])
    if doc["ok"] and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        doc["workdir"] = str(workdir)  # the services' output and data, to look at
    if args.json:
        report.write(json.dumps(doc, indent=2) + "\n")
        report.flush()
        if not doc["ok"]:
            render(doc, Console(stderr=True, width=None if sys.stderr.isatty() else 120))
    else:
        render(doc, Console(file=report, width=None if report.isatty() else 120))
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
