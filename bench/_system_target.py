"""The system under test: where its APIs and broker are, who can sign in, which processes
to account for.

- ``embedded``: what ``ates up`` starts (``ates.stack``: the bundled NATS, ``prepare``,
  ``start_services``, ``wait_healthy``, ``stop_services``), in a temporary data directory
  on free ports; the services' output goes to a log file there.
- ``urls``: a deployment already running, given by its URLs (nothing started or stopped).
- ``production``: ``bench/_system_production.py``.

A ``seed`` callback, given the tasks database URL, runs after migration and before the
services start (the shuffle phase writes its open tasks there).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _system_client import BenchError, Login
from _system_resources import Watched

from ates.config import PORT_OFFSETS, SERVICES, Settings
from ates.platform.broker.nats.server import EmbeddedNats
from ates.platform.tcp import port_is_free
from ates.stack import HTTP_SERVICES, prepare, start_services, stop_services, wait_healthy

Seed = Callable[[str], Awaitable[None]]
# settings the benchmark decides in the modes that start the system; any other ATES_*
# of the caller's environment (a tuning knob under test) reaches the services
PLACEMENT = ("DATA_DIR", "PORT_BASE", "HOST", "BROKER_URL", "NATS_PORT")


@dataclass
class Target:
    mode: str
    urls: dict[str, list[str]]  # service -> base URL of each of its processes
    broker_url: str
    admin: Login
    manager: Login | None  # None: the benchmark creates one
    known: list[Login]  # every login whose password the benchmark knows
    watched: list[Watched] = field(default_factory=list)  # processes of the system
    # servers other work shares too: (command name, label), looked up at each reading
    shared: list[tuple[str, str]] = field(default_factory=list)
    logs: Path | None = None


def settings_env() -> dict[str, str]:
    """The ``ATES_*`` of the caller's environment that pass through to the services."""
    return {
        k: v
        for k, v in os.environ.items()
        if k.startswith("ATES_") and not _placement(k.removeprefix("ATES_"))
    }


def _placement(name: str) -> bool:
    return name in PLACEMENT or name.endswith(("_DATABASE_URL", "_URL"))


def scrub_environment() -> None:
    """Drop the caller's placement settings (``ATES_DATA_DIR``, database URLs…): the
    benchmark's system lives in its own directory, on its own ports."""
    for name in [n for n in os.environ if n.startswith("ATES_")]:
        if _placement(name.removeprefix("ATES_")):
            del os.environ[name]


def _ephemeral_ports() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def free_port_base(avoid: frozenset[int] = frozenset()) -> int:
    """A base N with N … N+4 free and outside the range of outgoing connections' ports
    (a service must not lose its port to one of them between our check and its bind)."""
    ephemeral = _ephemeral_ports()
    rng = random.Random()
    while True:
        base = rng.randrange(10_000, 60_000, 10)
        ports = {base + offset for offset in PORT_OFFSETS.values()}
        if any(p in ephemeral for p in ports) or ports & avoid:
            continue
        if all(port_is_free(p) for p in ports):
            return base


async def wait_connected(urls: list[str], timeout: float = 60) -> None:
    """Until every process answers ``/healthz`` with its broker connected."""
    deadline = time.monotonic() + timeout
    pending = set(urls)
    async with httpx.AsyncClient(timeout=2) as http:
        while pending:
            for url in sorted(pending):
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    health = (await http.get(f"{url}/healthz")).json()
                    if health.get("broker", "connected") == "connected":
                        pending.discard(url)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"broker not connected after {timeout:.0f}s: {sorted(pending)}")
            await asyncio.sleep(0.2)


@contextlib.contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """Children started inside inherit ``log`` as stdout and stderr (``start_services``
    lets them inherit ours; notifications prints three lines per assignment)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("ab") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


@contextlib.asynccontextmanager
async def embedded(workdir: Path, seed: Seed | None = None) -> AsyncIterator[Target]:
    scrub_environment()
    settings = Settings(data_dir=workdir / "var", port_base=free_port_base())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    nats = EmbeddedNats(settings.data_dir / "nats")
    children = []
    log = workdir / "services.log"
    try:
        broker_url = nats.start()
        logins = [Login(*row) for row in await prepare(settings)]
        if seed is not None:
            await seed(settings.database_url("tasks"))
        with _output_to(log):
            children = start_services(settings, broker_url)
        await asyncio.to_thread(wait_healthy, settings, children)
        urls = {s: [f"http://{settings.host}:{settings.port(s)}"] for s in SERVICES}
        await wait_connected([u for found in urls.values() for u in found])
        watched = [Watched(c.service, c.process.pid) for c in children]
        if nats.process is not None:
            watched.append(Watched("nats-server", nats.process.pid))
        by_role = {login.role: login for login in logins}
        yield Target(
            mode="embedded",
            urls={s: urls[s] for s in HTTP_SERVICES},
            broker_url=broker_url,
            admin=by_role["admin"],
            manager=by_role.get("manager"),
            known=logins,
            watched=watched,
            logs=log,
        )
    finally:
        problems = await asyncio.to_thread(stop_services, children)
        nats.stop()
        for problem in problems:
            print(f"warning: {problem} (see {log})", file=sys.stderr)


@contextlib.asynccontextmanager
async def running(
    urls: dict[str, list[str]],
    broker_url: str,
    admin: Login,
    known: list[Login],
    pids: dict[str, list[int]],
) -> AsyncIterator[Target]:
    """A deployment someone else runs; ``pids`` (if it runs here) for its CPU and memory."""
    missing = [s for s in HTTP_SERVICES if not urls.get(s)]
    if missing:
        raise BenchError(f"no URL for {', '.join(missing)}")
    yield Target(
        mode="urls",
        urls=urls,
        broker_url=broker_url,
        admin=admin,
        manager=next((login for login in known if login.role == "manager"), None),
        known=known,
        watched=[Watched(service, pid) for service, found in pids.items() for pid in found],
    )
