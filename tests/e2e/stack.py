"""Start and stop the real system the way a user does (``ates up``), for e2e tests."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ates.config import PORT_OFFSETS
from ates.platform.embedded_nats import port_is_free

SERVICES = ("auth", "tasks", "billing", "analytics", "notifications")


def _ephemeral_ports() -> range:
    """The ports the kernel hands out to outgoing connections (Linux; a usual default
    elsewhere). A service must not listen in that range: its port could be taken, between
    our check and its bind, by one of the many connections the other processes open."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def free_port_base(avoid: AbstractSet[int] = frozenset()) -> int:
    """A base N with N … N+4 free (one port per service), outside the ephemeral range
    and none of them in ``avoid``."""
    ephemeral = _ephemeral_ports()
    rng = random.Random()
    while True:
        base = rng.randrange(10_000, 60_000, 10)
        ports = {base + offset for offset in PORT_OFFSETS.values()}
        if any(p in ephemeral for p in ports) or ports & avoid:
            continue
        if all(port_is_free(p) for p in ports):
            return base


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
        from ates.services.auth.password_login import password_login

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
        if self._drain is None:
            out, _ = self.process.communicate(timeout=60)
            return "\n".join(self.output) + "\n" + (out or "")
        self.process.wait(timeout=60)
        self._drain.join(timeout=10)
        return self.text() + "\n"


def start_stack(data_dir: Path, port_base: int | None = None, **env: str) -> Stack:
    port_base = port_base or free_port_base()
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
    stack = Stack(data_dir, port_base, process)
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
    raise AssertionError("ates up did not come up:\n" + "\n".join(stack.output))
