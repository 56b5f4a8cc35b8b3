"""A RabbitMQ node of one test's own, for tests that stop and start the broker.

The machine's RabbitMQ is shared (other people, other test runs): a test never stops it.
A test that restarts RabbitMQ gets a second node instead, started here from the same
installation: its own name, AMQP and distribution ports the operating system chose, its
own data, logs, plugins list, configuration and Erlang cookie in a temporary directory,
and it is stopped (and its process gone) when the test ends.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

START_SECONDS = 90


def free_port() -> int:
    """A TCP port the operating system says is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def rabbitmq_bin_dir() -> Path | None:
    """Where ``rabbitmq-server`` and ``rabbitmqctl`` really are. Debian's
    ``/usr/sbin`` ones are wrappers that switch to the ``rabbitmq`` user and its cookie;
    the node of a test runs as whoever runs the tests."""
    chosen = os.environ.get("TEST_RABBITMQ_BIN_DIR")
    if chosen:
        return Path(chosen)
    debian = Path("/usr/lib/rabbitmq/bin")
    if (debian / "rabbitmq-server").exists():
        return debian
    found = shutil.which("rabbitmq-server")
    return Path(found).resolve().parent if found else None


class RabbitNode:
    """``start()``, then ``url``; ``restart()`` as often as a test likes; ``stop()``."""

    def __init__(self, home: Path, bin_dir: Path) -> None:
        self.home = home
        self.bin_dir = bin_dir
        self.name = f"ates-test-{uuid.uuid4().hex[:10]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.pid_file = home / "rabbitmq.pid"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        home = self.home
        return {
            **os.environ,
            "HOME": str(home),  # the Erlang cookie of this node and its rabbitmqctl
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(home / "plugins"),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"),  # rabbitmq.conf
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
            # one scheduler: the machine is shared and small
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+S 1:1",
        }

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "enabled_plugins").write_text("[].\n")  # no management port to clash
        (self.home / "rabbitmq.conf").write_text("")
        (self.home / "rabbitmq-env.conf").write_text("")
        log = (self.home / "server.out").open("wb")
        self.process = subprocess.Popen(
            [str(self.bin_dir / "rabbitmq-server")],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.home,
        )
        try:
            self._ctl_sync("wait", str(self.pid_file), "--timeout", str(START_SECONDS))
        except Exception:
            self.stop()
            raise

    def _ctl_sync(self, *args: str, timeout: float = START_SECONDS + 10) -> str:
        done = subprocess.run(
            [str(self.bin_dir / "rabbitmqctl"), "-n", self.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} on {self.name} failed: "
                f"{done.stderr or done.stdout}\n{self.output()}"
            )
        return done.stdout

    async def ctl(self, *args: str) -> str:
        return await asyncio.to_thread(self._ctl_sync, *args)

    async def restart(self, while_down: object = None, *, down_seconds: float = 0.0) -> None:
        """Stop the RabbitMQ application (the node and its data stay, every connection
        is closed, as in a restart), run ``while_down``, start it again."""
        await self.ctl("stop_app")
        try:
            if callable(while_down):
                await while_down()
            if down_seconds:
                await asyncio.sleep(down_seconds)  # a length of outage, not a wait for one
        finally:
            await self.ctl("start_app")
            await self.ctl("await_startup")

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            try:
                self._ctl_sync("stop", timeout=60)
            except Exception:
                process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        self.process = None

    def output(self) -> str:
        path = self.home / "server.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""
