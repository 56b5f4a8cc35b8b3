"""The production topology on this machine's servers, for ``bench/system.py --production``.

What docker-compose deploys (docs/operations.md), as processes: a fresh PostgreSQL
database per service (``ates_bench_<hex>_<service>``), a broker, ``ates migrate`` once, an
admin and a manager made with ``ates users create``, then ``python -m ates serve SERVICE
--no-migrate`` for auth and two processes of every consuming service (tasks, billing,
analytics, notifications). A second process listens on ports of its own but is told the
same public URLs, as a replica behind a proxy would be; the benchmark spreads its
requests over both. Everything is removed afterwards: processes, databases
(``DROP … WITH (FORCE)``), the broker's part.

The broker (``--broker``):

- ``rabbitmq``: a fresh virtual host (``ates-bench-<hex>``) on the machine's RabbitMQ,
  shared with other work (its CPU is shown apart, as PostgreSQL's);
- ``kafka``: a Kafka broker of the benchmark's own (:class:`BenchKafka`), started in the
  work directory on ports the operating system chose and stopped at the end; part of the
  system under test, like the bundled NATS of the embedded mode.

(The same idea as ``tests/e2e/production.py``, which a benchmark must not import.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from _system_client import BenchError, Login
from _system_resources import Watched
from _system_target import Seed, Target, free_port_base, settings_env, wait_connected

from ates.config import PORT_OFFSETS, SERVICES
from ates.platform.broker.kafka.server import LocalKafka
from ates.testing.servers import throwaway_databases, throwaway_vhost

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"
PUBLIC = ("auth", "tasks", "billing", "analytics")
REPLICAS = {"auth": 1, "tasks": 2, "billing": 2, "analytics": 2, "notifications": 2}
BROKERS = ("rabbitmq", "kafka")


class BenchKafka(LocalKafka):
    """``LocalKafka`` as the compose file's single node runs (docs/operations.md):

    - every batch written to disk before it is acknowledged (``log.flush.interval.messages
      = 1``): one node has no replica to keep an acknowledged event, and the other brokers
      measured here fsync too (NATS ``sync_interval: always``, RabbitMQ's quorum queues);
    - the JVM's full JIT (``LocalKafka`` stops at C1 to start faster in tests, which costs
      the broker CPU under load). Heap and collector stay the test's small ones.
    """

    def _java(self) -> list[str]:
        return [option for option in super()._java() if option != "-XX:TieredStopAtLevel=1"]

    def _write_config(self) -> Path:
        properties = super()._write_config()
        with properties.open("a") as out:
            out.write("log.flush.interval.messages=1\n")
        return properties


@contextlib.asynccontextmanager
async def _kafka(workdir: Path) -> AsyncIterator[BenchKafka]:
    server = BenchKafka(workdir / "kafka", log_level="WARN")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    if process.returncode != 0:
        raise BenchError(f"{' '.join(args[:4])} failed: {(err or out).decode().strip()}")
    return out.decode()


def _start(
    env: dict[str, str], first: int, log: Path, started: list[subprocess.Popen[bytes]]
) -> dict[str, list[str]]:
    """Every service's processes, in ``REPLICAS`` order (appended to ``started``); the
    URL of each process by service."""
    bases = [first]
    for _ in range(max(REPLICAS.values()) - 1):
        taken = frozenset(b + o for b in bases for o in PORT_OFFSETS.values())
        bases.append(free_port_base(avoid=taken))
    urls: dict[str, list[str]] = {s: [] for s in SERVICES}
    with log.open("ab") as out:
        for service, count in REPLICAS.items():
            for base in bases[:count]:
                started.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "ates", "serve", service, "--no-migrate"],
                        env={**env, "ATES_PORT_BASE": str(base)},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
                urls[service].append(f"http://127.0.0.1:{base + PORT_OFFSETS[service]}")
    return urls


def _stop(processes: list[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.asynccontextmanager
async def production(
    workdir: Path,
    seed: Seed | None = None,
    postgres: str = POSTGRES,
    rabbitmq: str = RABBITMQ,
    broker: str = "rabbitmq",
) -> AsyncIterator[Target]:
    if broker not in BROKERS:
        raise BenchError(f"no broker {broker!r}: one of {', '.join(BROKERS)}")
    tag = uuid.uuid4().hex[:10]
    names = {service: f"ates_bench_{tag}_{service}" for service in SERVICES}
    processes: list[subprocess.Popen[bytes]] = []
    log = workdir / "services.log"
    shared = [("postgres", "postgresql (shared)")]
    async with contextlib.AsyncExitStack() as cleanup:
        try:
            database_urls = await cleanup.enter_async_context(throwaway_databases(postgres, names))
            kafka: BenchKafka | None = None
            if broker == "kafka":
                kafka = await cleanup.enter_async_context(_kafka(workdir))
                broker_url = kafka.url
            else:
                broker_url = await cleanup.enter_async_context(
                    throwaway_vhost(rabbitmq, f"ates-bench-{tag}")
                )
                shared.insert(0, ("beam.smp", "rabbitmq (shared)"))

            first = free_port_base()
            public = {s: f"http://127.0.0.1:{first + PORT_OFFSETS[s]}" for s in PUBLIC}
            env = {k: v for k, v in os.environ.items() if not k.startswith("ATES_")}
            env.update(settings_env())
            env.update(
                ATES_BROKER_URL=broker_url,
                ATES_SECRET_KEY=secrets.token_hex(32),
                ATES_DATA_DIR=str(workdir / "data"),
                ATES_PORT_BASE=str(first),
            )
            env.setdefault("ATES_LOG_LEVEL", "WARNING")
            env.update({f"ATES_{s.upper()}_URL": url for s, url in public.items()})
            env.update({f"ATES_{s.upper()}_DATABASE_URL": u for s, u in database_urls.items()})
            logins = await _prepare(env, tag)
            if seed is not None:
                await seed(env["ATES_TASKS_DATABASE_URL"])

            urls = _start(env, first, log, processes)
            watched = [
                Watched(service, process.pid)
                for service, process in zip(
                    (s for s, count in REPLICAS.items() for _ in range(count)),
                    processes,
                    strict=True,
                )
            ]
            if kafka is not None and kafka.process is not None:
                watched.append(Watched("kafka", kafka.process.pid))  # part of the system
            try:
                await wait_connected([u for found in urls.values() for u in found], timeout=120)
            except BenchError as error:
                raise BenchError(f"{error}; the services' output is in {log}") from error
            yield Target(
                mode=f"production ({broker})",
                urls={s: urls[s] for s in PUBLIC},
                broker_url=broker_url,
                admin=logins[0],
                manager=logins[1],
                known=logins,
                watched=watched,
                shared=shared,
                logs=log,
            )
        finally:
            await asyncio.to_thread(_stop, processes)  # before their broker and databases go


async def _prepare(env: dict[str, str], tag: str) -> list[Login]:
    """``ates migrate``, then the benchmark's admin and manager (``ates users create``)."""
    python = sys.executable
    await _run(python, "-m", "ates", "migrate", env=env)
    logins = [
        Login(f"bench-{tag}-{role}", role, secrets.token_urlsafe(15))
        for role in ("admin", "manager")
    ]
    for login in logins:
        await _run(
            python,
            "-m",
            "ates",
            "users",
            "create",
            login.username,
            "--role",
            login.role,
            "--password",
            login.password,
            env=env,
        )
    return logins
