"""The production topology as real processes, for e2e tests (docs/operations.md).

What ``docker-compose.yml`` deploys, on this machine's servers instead of containers:
one fresh PostgreSQL database per service (``ates_flow_<hex>_<service>``), a broker
(:class:`TopologyBroker`: a fresh virtual host ``ates-flow-<hex>`` on the machine's
RabbitMQ, or a Kafka broker of the test's own, ``LocalKafka`` on ports the operating
system chose, with its own data folder), ``ates migrate`` once, then every service as its
own ``python -m ates serve SERVICE --no-migrate`` process — two each of the consuming
services (tasks, billing, analytics, notifications). Every setting goes through the
environment only.

The second process of a scaled service listens on a port of another ``ATES_PORT_BASE``
but is told the same public URLs (``ATES_AUTH_URL``, ``ATES_TASKS_URL``, …) as the first:
tokens name auth's public URL as their issuer, and every process fetches auth's keys
from there, as replicas behind one proxy would.

Everything is removed afterwards: processes (SIGTERM, then kill if one hangs),
databases (``DROP … WITH (FORCE)``), the virtual host with its queues and streams, or
the Kafka broker with its data.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from ates.config import PORT_OFFSETS, SERVICES
from ates.password_login import password_login
from ates.platform.broker.kafka.server import LocalKafka
from ates.testing.servers import throwaway_databases, throwaway_vhost
from tests.e2e.stack import PortBlock, clean_env, reserve_ports

PUBLIC = ("auth", "tasks", "billing", "analytics")  # services with a public URL
START_SECONDS = 120.0
STOP_SECONDS = 30.0


@dataclass
class ServiceProcess:
    """One ``ates serve`` process and everything it printed (stdout and stderr)."""

    service: str
    replica: int
    port: int
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    killed: bool = False  # by the test (SIGKILL): its exit code says nothing
    _drain: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"{self.service}-{self.replica}"

    @property
    def url(self) -> str:
        """Where this very process listens (not the public URL of its service)."""
        return f"http://127.0.0.1:{self.port}"

    def drain(self) -> None:
        """Read the output as it comes: a pipe nobody reads fills up and blocks the
        service on its next print (notifications prints a line per message)."""
        stdout = self.process.stdout
        assert stdout is not None

        def _read() -> None:
            for line in stdout:
                self.output.append(line.rstrip())

        self._drain = threading.Thread(target=_read, name=f"{self.name}-output", daemon=True)
        self._drain.start()

    def text(self) -> str:
        return "\n".join(self.output)

    def wait(self, timeout: float = STOP_SECONDS) -> int:
        """The exit code; a process that does not end in time is killed (and reported as
        killed: a negative code)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=10)
            self.output.append(f"[test] {self.name} did not stop within {timeout}s: killed")
        if self._drain is not None:
            self._drain.join(timeout=10)
        return code


# the kinds of broker a topology runs on, as test parameters (with their servers' markers)
RABBITMQ = pytest.param("rabbitmq", marks=pytest.mark.rabbitmq, id="rabbitmq")
KAFKA = pytest.param("kafka", marks=pytest.mark.kafka, id="kafka")


@dataclass
class TopologyBroker:
    """The broker of one topology: which kind it is, its URL, and for Kafka the server
    itself (a crash test kills it and starts it again on the same ports and data)."""

    kind: str  # "rabbitmq" | "kafka"
    url: str
    kafka: LocalKafka | None = None


@asynccontextmanager
async def rabbitmq_vhost(rabbitmq_server: str) -> AsyncIterator[TopologyBroker]:
    """A fresh virtual host on the machine's RabbitMQ, deleted (with every queue and
    stream in it) afterwards."""
    async with throwaway_vhost(rabbitmq_server, f"ates-flow-{uuid.uuid4().hex[:12]}") as url:
        yield TopologyBroker("rabbitmq", url)


@dataclass
class Production:
    """The running topology: its environment, its processes, its people."""

    env: dict[str, str]
    workdir: Path
    databases: dict[str, str]  # service -> database name
    broker: TopologyBroker
    processes: list[ServiceProcess] = field(default_factory=list)
    passwords: dict[str, str] = field(default_factory=dict)  # username -> password
    ports: list[PortBlock] = field(default_factory=list)  # held while the topology lives

    # --- processes ------------------------------------------------------------------------

    def start(self, service: str, replica: int, port_base: int) -> ServiceProcess:
        """``python -m ates serve SERVICE --no-migrate`` with this topology's environment,
        listening at ``port_base`` + the service's offset."""
        process = subprocess.Popen(
            [sys.executable, "-m", "ates", "serve", service, "--no-migrate"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=self.workdir,
            env={**self.env, "ATES_PORT_BASE": str(port_base)},
        )
        started = ServiceProcess(service, replica, port_base + PORT_OFFSETS[service], process)
        started.drain()
        self.processes.append(started)
        return started

    def kill(self, proc: ServiceProcess) -> None:
        """SIGKILL, as a crash or the kernel's OOM killer ends a process: no shutdown, no
        farewell to the broker, a batch in flight left where it was."""
        proc.killed = True
        proc.process.kill()
        proc.wait()

    def restart(self, proc: ServiceProcess) -> ServiceProcess:
        """Start the service again where ``proc`` ran (its port, its replica number), as
        an orchestrator replaces a crashed container."""
        return self.start(proc.service, proc.replica, proc.port - PORT_OFFSETS[proc.service])

    def replicas(self, service: str) -> list[ServiceProcess]:
        """The live processes of ``service`` (not those the test killed)."""
        return [p for p in self.processes if p.service == service and not p.killed]

    def urls(self, service: str) -> list[str]:
        """The address of every process of ``service``, first replica first."""
        return [p.url for p in self.replicas(service)]

    def url(self, service: str) -> str:
        """The public URL of ``service`` (its first process)."""
        return self.urls(service)[0]

    async def wait_healthy(self, timeout: float = START_SECONDS) -> None:
        """Until every process answers ``GET /healthz`` with 200; a process that exits
        meanwhile fails at once, with what it printed."""
        deadline = time.monotonic() + timeout
        pending = [p for p in self.processes if not p.killed]
        async with httpx.AsyncClient(timeout=2) as http:
            while pending:
                for proc in list(pending):
                    if proc.process.poll() is not None:
                        raise AssertionError(
                            f"{proc.name} exited with {proc.process.returncode}:\n{proc.text()}"
                        )
                    try:
                        answer = await http.get(f"{proc.url}/healthz")
                    except httpx.HTTPError:
                        continue
                    if answer.status_code == 200:
                        pending.remove(proc)
                if not pending:
                    return
                if time.monotonic() > deadline:
                    late = ", ".join(p.name for p in pending)
                    raise AssertionError(f"not healthy after {timeout:.0f}s: {late}")
                await asyncio.sleep(0.2)

    def stop(self) -> dict[str, int]:
        """SIGTERM to every process still running, then the exit code of each by name
        (those the test killed left out)."""
        for proc in self.processes:
            if proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        codes = {proc.name: proc.wait() for proc in self.processes if not proc.killed}
        for proc in self.processes:
            proc.wait()
        return codes

    def output(self, tail: int | None = None) -> str:
        """What every process printed (the last ``tail`` lines of each), each line prefixed
        with its process's name, and how each process stands."""
        lines = []
        for p in self.processes:
            code = p.process.poll()
            state = "running" if code is None else f"exited with {code}"
            state += ", killed by the test" if p.killed else ""
            shown = p.output[-tail:] if tail else p.output
            lines.append(f"--- {p.name} ({state}), {len(p.output)} lines, last {len(shown)}:")
            lines += [f"{p.name}| {line}" for line in shown]
        return "\n".join(lines)

    # --- the command line -----------------------------------------------------------------

    async def ates(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m ates ARGS`` with this topology's environment."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ates",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            cwd=self.workdir,
            env={**self.env, "COLUMNS": "200"},
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError as error:
            process.kill()
            await process.wait()
            raise AssertionError(f"ates {' '.join(args)} took more than {timeout}s") from error
        done = subprocess.CompletedProcess(
            ["ates", *args], process.returncode or 0, out.decode(), err.decode()
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"ates {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done

    async def create_person(self, username: str, role: str) -> None:
        """``ates users create`` (auth's database; its outbox holds the AccountCreated
        until auth's relay publishes it)."""
        password = f"pw-{uuid.uuid4().hex[:16]}"
        await self.ates("users", "create", username, "--role", role, "--password", password)
        self.passwords[username] = password

    def token(self, username: str) -> str:
        """An access token got the way ``ates token`` gets one (PKCE flow of
        ``ates-cli``, login form filled in) from auth's public URL."""
        answer = password_login(self.url("auth"), username, self.passwords[username])
        return str(answer["access_token"])

    # --- the databases --------------------------------------------------------------------

    def database_url(self, service: str) -> str:
        return self.env[f"ATES_{service.upper()}_DATABASE_URL"]

    def dsn(self, service: str) -> str:
        """A libpq URL of the service's database (for asyncpg)."""
        return self.database_url(service).replace("postgresql+asyncpg://", "postgresql://", 1)

    async def query(self, service: str, sql: str, *args: object) -> list[asyncpg.Record]:
        """Read a service's database directly (for what no API shows: dead letters, the
        outbox of events a service produced)."""
        connection = await asyncpg.connect(self.dsn(service))
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()


def topology_env(
    *,
    broker_url: str,
    database_urls: Mapping[str, str],
    port_base: int,
    data_dir: Path,
) -> dict[str, str]:
    """The environment of every process and command of one topology."""
    env = clean_env(
        ATES_BROKER_URL=broker_url,
        ATES_SECRET_KEY=uuid.uuid4().hex + uuid.uuid4().hex,
        ATES_PORT_BASE=str(port_base),
        ATES_DATA_DIR=str(data_dir),
        ATES_OUTBOX_POLL_SECONDS="0.3",
    )
    for service, url in database_urls.items():
        env[f"ATES_{service.upper()}_DATABASE_URL"] = url
    for service in PUBLIC:
        env[f"ATES_{service.upper()}_URL"] = f"http://127.0.0.1:{port_base + PORT_OFFSETS[service]}"
    return env


@asynccontextmanager
async def production(
    postgres_dsn: str, broker: TopologyBroker, workdir: Path
) -> AsyncIterator[Production]:
    """Fresh databases, migrated, on ``broker``; no service started yet (see
    :func:`start_all`). Processes and databases are stopped and removed on exit (the
    broker by whoever provided it)."""
    tag = uuid.uuid4().hex[:12]
    names = {service: f"ates_flow_{tag}_{service}" for service in SERVICES}
    topology: Production | None = None
    async with throwaway_databases(postgres_dsn, names) as database_urls:
        ports = reserve_ports()
        try:
            data_dir = workdir / "data"
            data_dir.mkdir(parents=True, exist_ok=True)
            env = topology_env(
                broker_url=broker.url,
                database_urls=database_urls,
                port_base=ports.base,
                data_dir=data_dir,
            )
            topology = Production(
                env=env, workdir=workdir, databases=names, broker=broker, ports=[ports]
            )
            await topology.ates("migrate")
            yield topology
        finally:
            if topology is not None:
                topology.stop()  # idempotent: what the test stopped already is only waited for
            for block in topology.ports if topology is not None else [ports]:
                block.release()


# processes per scaled-out service: two of each that consumes events, so that each of
# them shares its queues (RabbitMQ) or its partitions (Kafka) with a second process
SCALED: Mapping[str, int] = {"tasks": 2, "billing": 2, "analytics": 2, "notifications": 2}


def start_all(topology: Production, scaled: Mapping[str, int] = SCALED) -> None:
    """Every service as its own process; ``scaled`` services get more processes, each
    further one on a port base of its own but with the same public URLs."""
    first = int(topology.env["ATES_PORT_BASE"])
    for service in SERVICES:
        topology.start(service, 1, first)
    for replica in range(2, max(scaled.values(), default=1) + 1):
        block = reserve_ports()  # held by the topology until it is torn down
        topology.ports.append(block)
        for service, count in scaled.items():
            if replica <= count:
                topology.start(service, replica, block.base)


T = TypeVar("T")


async def gather_limited(jobs: Iterable[Awaitable[T]], limit: int = 6) -> list[T]:
    """Run ``jobs`` concurrently, at most ``limit`` at a time (two CPUs serve them all)."""
    gate = asyncio.Semaphore(limit)

    async def _one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return await asyncio.gather(*(_one(job) for job in jobs))


class Api:
    """The public HTTP API of a topology, called as one person or another, at one process
    or another (each request names the process's address)."""

    def __init__(self, topology: Production, http: httpx.AsyncClient) -> None:
        self.topology = topology
        self.http = http
        self._tokens: dict[str, str] = {}

    async def token(self, username: str) -> str:
        if username not in self._tokens:
            self._tokens[username] = await asyncio.to_thread(self.topology.token, username)
        return self._tokens[username]

    async def call(
        self,
        username: str,
        method: str,
        url: str,
        path: str,
        *,
        expect: tuple[int, ...] = (200,),
        **kw: Any,
    ) -> httpx.Response:
        """One request as ``username``; an answer not in ``expect`` fails the test with the
        service's explanation. An expired token is renewed once."""
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {await self.token(username)}"}
            response = await self.http.request(method, url + path, headers=headers, **kw)
            if response.status_code == 401 and attempt == 1 and 401 not in expect:
                self._tokens.pop(username, None)
                continue
            break
        assert response.status_code in expect, (
            f"{method} {url}{path} as {username}: HTTP {response.status_code} {response.text}"
        )
        return response

    async def json(self, username: str, method: str, url: str, path: str, **kw: Any) -> Any:
        return (await self.call(username, method, url, path, **kw)).json()
