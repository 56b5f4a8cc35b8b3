"""Start and stop the real system the way a user does (``ates up``), for e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ates.platform.embedded_nats import free_port, port_is_free

SERVICES = ("auth", "tasks", "billing", "analytics", "notifications")


def free_port_base() -> int:
    while True:
        base = free_port()
        if base < 60000 and all(port_is_free(base + i) for i in range(len(SERVICES))):
            return base


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATES_")}
    env.update(extra)
    return env


@dataclass
class Stack:
    data_dir: Path
    port_base: int
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port_base + SERVICES.index(service)}"

    @property
    def logins(self) -> dict[str, tuple[str, str]]:
        """username -> (role, password), from the demo logins file."""
        rows = (self.data_dir / "demo-logins.txt").read_text().splitlines()
        return {u: (r, p) for u, r, p in (row.split("\t") for row in rows)}

    def ates(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run an ``ates`` command against this stack's data and ports."""
        return subprocess.run(
            [sys.executable, "-m", "ates", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
            env=clean_env(ATES_DATA_DIR=str(self.data_dir), ATES_PORT_BASE=str(self.port_base)),
        )

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        return "\n".join(self.output) + "\n" + (out or "")


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
