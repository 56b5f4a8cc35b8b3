"""Start and stop the real system the way a user does (``ates up``), for e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ates.config import PORT_OFFSETS

SERVICES = ("auth", "tasks", "billing", "analytics", "notifications")


class PortBlock:
    """Ports N … N+4, one per service, asked of the operating system and held until
    :meth:`release`.

    Each is held by a socket bound with ``SO_REUSEADDR`` that never listens: the services
    bind the same port (they set ``SO_REUSEADDR`` too) and listen on it, while nothing
    else can take it meanwhile, neither another test's bind nor the kernel handing it to
    an outgoing connection (Linux never auto-binds a port someone bound explicitly)."""

    def __init__(self, base: int, sockets: list[socket.socket]) -> None:
        self.base = base
        self._sockets = sockets

    @property
    def ports(self) -> set[int]:
        return {self.base + offset for offset in PORT_OFFSETS.values()}

    def listen(self, port: int) -> None:
        """Make one of the held ports a listening one (as if a server had taken it)."""
        held = next(h for h in self._sockets if h.getsockname()[1] == port)
        held.listen()

    def release(self) -> None:
        for held in self._sockets:
            held.close()
        self._sockets = []


def _held(port: int) -> socket.socket:
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        held.bind(("127.0.0.1", port))
    except OSError:
        held.close()
        raise
    return held


def reserve_ports(base: int | None = None, avoid: AbstractSet[int] = frozenset()) -> PortBlock:
    """Hold N … N+4: the block starting at ``base``, or at a port the operating system
    chose (bind to port 0) whose next four ports are free too, none of them in ``avoid``."""
    for _ in range(200):
        sockets: list[socket.socket] = []
        try:
            sockets.append(_held(base or 0))
            start = sockets[0].getsockname()[1]
            wanted = {start + offset for offset in PORT_OFFSETS.values()}
            if max(wanted) > 65535 or wanted & avoid:
                raise OSError(f"ports from {start} cannot be used")
            for port in sorted(wanted - {start}):
                sockets.append(_held(port))
        except OSError:
            for held in sockets:
                held.close()
            if base is not None:
                raise
            continue
        return PortBlock(start, sockets)
    raise RuntimeError("no block of free ports found")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``ATES_*`` (a developer's shell must not
    leak into the system under test), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATES_")}
    env.update(extra)
    return env


@dataclass
class Stack:
    data_dir: Path
    port_base: int
    process: subprocess.Popen[str]
    ports: PortBlock | None = None  # held for the stack's life
    output: list[str] = field(default_factory=list)
    _drain: threading.Thread | None = None

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port_base + SERVICES.index(service)}"

    @property
    def logins(self) -> dict[str, tuple[str, str]]:
        """username -> (role, password), from the demo logins file."""
        rows = (self.data_dir / "demo-logins.txt").read_text().splitlines()
        return {u: (r, p) for u, r, p in (row.split("\t") for row in rows)}

    def token(self, username: str) -> str:
        """An access token for a demo person, got the way ``ates token`` gets one."""
        from ates.password_login import password_login

        _, password = self.logins[username]
        return str(password_login(self.url("auth"), username, password)["access_token"])

    def api(self, service: str, username: str) -> httpx.Client:
        """An HTTP client for ``service``'s API, signed in as a demo person."""
        return httpx.Client(
            base_url=self.url(service),
            headers={"Authorization": f"Bearer {self.token(username)}"},
            timeout=10,
        )

    def ates(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run an ``ates`` command against this stack's data and ports."""
        return subprocess.run(
            [sys.executable, "-m", "ates", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            env=clean_env(ATES_DATA_DIR=str(self.data_dir), ATES_PORT_BASE=str(self.port_base)),
        )

    def drain(self) -> None:
        """Keep reading the stack's output in the background. The services print to it
        (notifications prints a line per message); a pipe nobody reads fills up and
        blocks every service that writes to it."""
        stdout = self.process.stdout
        assert stdout is not None

        def _read() -> None:
            for line in stdout:
                self.output.append(line.rstrip())

        self._drain = threading.Thread(target=_read, name="ates-up-output", daemon=True)
        self._drain.start()

    def text(self) -> str:
        """Everything the stack printed so far."""
        return "\n".join(self.output)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            if self._drain is None:
                out, _ = self.process.communicate(timeout=60)
                return "\n".join(self.output) + "\n" + (out or "")
            self.process.wait(timeout=60)
            self._drain.join(timeout=10)
            return self.text() + "\n"
        finally:
            if self.ports is not None:
                self.ports.release()


def start_stack(data_dir: Path, port_base: int | None = None, **env: str) -> Stack:
    ports = reserve_ports(port_base)
    port_base = ports.base
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ates",
            "up",
            "--data-dir",
            str(data_dir),
            "--port-base",
            str(port_base),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(**env),
    )
    stack = Stack(data_dir, port_base, process, ports=ports)
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        stack.output.append(line.rstrip())
        if "aTES is up" in line:
            return stack
    process.kill()
    ports.release()
    raise AssertionError("ates up did not come up:\n" + "\n".join(stack.output))
