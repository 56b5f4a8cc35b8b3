"""``ates up``: the whole embedded system on one machine.

Starts the bundled NATS server, migrates every service database, seeds demo people on
the first run, starts each service as its own ``ates serve`` process, and on Ctrl-C or
SIGTERM stops the services first and the broker last, so nothing is left running and no
write is cut in half.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from ates import stackfile
from ates.config import SERVICES, Settings
from ates.platform.broker.nats.server import EmbeddedNats
from ates.platform.tcp import port_is_free

DEMO_PEOPLE = (
    ("admin", "admin", "Ada Admin"),
    ("manager", "manager", "Max Manager"),
    ("accountant", "accountant", "Alice Accountant"),
    ("worker", "worker", "Polly Popug"),
    ("worker2", "worker", "Kesha Popug"),
    ("worker3", "worker", "Rio Popug"),
)
HTTP_SERVICES = ("auth", "tasks", "billing", "analytics", "notifications")


class StackError(RuntimeError):
    pass


@dataclass
class Child:
    service: str
    process: subprocess.Popen[bytes]


def check_ports(settings: Settings) -> None:
    taken = [
        f"{s} :{settings.port(s)}"
        for s in SERVICES
        if not port_is_free(settings.port(s), settings.host)
    ]
    if taken:
        raise StackError(
            f"ports in use: {', '.join(taken)} — choose another ATES_PORT_BASE / --port-base"
        )


async def prepare(settings: Settings) -> list[tuple[str, str, str]]:
    """Migrate every database; on first run create the demo people. Returns logins."""
    from ates.clitools import service_runtime
    from ates.services.auth.commands import CreatePerson, create_person
    from ates.services.auth.queries import list_people

    for service in SERVICES:
        async with service_runtime(service, settings):
            pass
    logins_file = settings.data_dir / "demo-logins.txt"
    async with service_runtime("auth", settings, migrate=False) as auth:
        async with auth.uow() as uow:
            has_people = bool(await list_people(uow))
        if not has_people:
            lines = []
            for username, role, full_name in DEMO_PEOPLE:
                password = secrets.token_urlsafe(9)
                async with auth.uow() as uow:
                    await create_person(
                        uow,
                        CreatePerson(
                            username=username, role=role, password=password, full_name=full_name
                        ),
                    )
                lines.append(f"{username}\t{role}\t{password}")
            logins_file.write_text("\n".join(lines) + "\n")
            logins_file.chmod(0o600)
    if not logins_file.exists():
        return []
    return [
        (parts[0], parts[1], parts[2])
        for parts in (line.split("\t") for line in logins_file.read_text().splitlines())
        if len(parts) == 3
    ]


def child_env(settings: Settings, broker_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ATES_DATA_DIR=str(settings.data_dir.resolve()),
        ATES_BROKER_URL=broker_url,
        ATES_PORT_BASE=str(settings.port_base),
        ATES_HOST=settings.host,
        ATES_TIMEZONE=settings.timezone,
    )
    # the console belongs to the URLs, the logins and the notifications' lines
    env.setdefault("ATES_LOG_LEVEL", "WARNING")
    return env


def start_services(settings: Settings, broker_url: str) -> list[Child]:
    env = child_env(settings, broker_url)
    children = []
    for service in SERVICES:
        process = subprocess.Popen(
            [sys.executable, "-m", "ates", "serve", service, "--no-migrate"],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # we stop them ourselves, services before the broker
        )
        children.append(Child(service, process))
    return children


def wait_healthy(settings: Settings, children: list[Child], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    pending = {c.service for c in children}
    with httpx.Client(timeout=1) as client:
        while pending and time.monotonic() < deadline:
            for child in children:
                if child.process.poll() is not None:
                    raise StackError(f"{child.service} exited with {child.process.returncode}")
            for service in sorted(pending):
                try:
                    url = f"http://{settings.host}:{settings.port(service)}/healthz"
                    if client.get(url).status_code == 200:
                        pending.discard(service)
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
    if pending:
        raise StackError(f"not healthy after {timeout}s: {', '.join(sorted(pending))}")


def stop_services(children: list[Child], timeout: float = 15) -> list[str]:
    """SIGTERM every service, wait, kill what hangs; returns what did not stop cleanly."""
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
    return [
        f"{child.service} exited with {child.process.returncode}"
        for child in children
        if child.process.returncode != 0
    ]


def run_stack(settings: Settings, echo: object = print) -> int:
    say = echo if callable(echo) else print
    check_ports(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    nats: EmbeddedNats | None = None
    children: list[Child] = []
    stopping = {"signal": None}

    def _on_signal(signum: int, _frame: object) -> None:
        stopping["signal"] = signum  # type: ignore[assignment]

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        broker_url = settings.broker_url
        if broker_url is None:
            nats = EmbeddedNats(settings.data_dir / "nats", port=settings.nats_port)
            broker_url = nats.start()
        say(f"broker: {broker_url}")
        logins = asyncio.run(prepare(settings))
        children = start_services(settings, broker_url)
        wait_healthy(settings, children)
        # where the running stack is, for the commands that talk to it (removed below)
        stackfile.write(
            settings.data_dir,
            stackfile.RunningStack(
                pid=os.getpid(),
                host=settings.host,
                port_base=settings.port_base,
                broker_url=broker_url,
            ),
        )
        for service in HTTP_SERVICES:
            say(f"{service:<14} {settings.public_url(service)}/")
        if logins:
            say(
                "demo logins (user / role / password), also in "
                f"{settings.data_dir / 'demo-logins.txt'}:"
            )
            for username, role, password in logins:
                say(f"  {username:<11} {role:<11} {password}")
        say("aTES is up. Ctrl-C stops it.")
        while stopping["signal"] is None:
            for child in children:
                if child.process.poll() is not None:
                    raise StackError(f"{child.service} stopped with {child.process.returncode}")
            time.sleep(0.2)
        return 0
    finally:
        stackfile.remove(settings.data_dir, pid=os.getpid())
        say("stopping…")
        for problem in stop_services(children):
            say(f"warning: {problem}")
        if nats is not None:
            nats.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        say("stopped.")
