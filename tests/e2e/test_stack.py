"""`ates up` as a user runs it: one command, every service, a clean stop, a resume."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ates.platform.tcp import port_is_free
from tests.e2e.stack import clean_env, reserve_ports, start_stack

pytestmark = pytest.mark.e2e


def _nats_processes(data_dir: Path) -> list[str]:
    ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if "nats-server" in line and str(data_dir) in line]


def test_up_serves_everything_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    stack = start_stack(data_dir)
    base = stack.port_base
    try:
        text = "\n".join(stack.output)
        assert "broker: nats://127.0.0.1:" in text
        for offset, name in enumerate(("auth", "tasks", "billing", "analytics")):
            assert f"http://127.0.0.1:{base + offset}/" in text
            health = httpx.get(f"http://127.0.0.1:{base + offset}/healthz", timeout=5).json()
            assert health["service"] == name
        assert httpx.get(f"http://127.0.0.1:{base + 4}/healthz").json()["service"] == (
            "notifications"
        )
        logins = (data_dir / "demo-logins.txt").read_text().split()
        assert {"admin", "manager", "accountant", "worker"} <= set(logins)
        assert _nats_processes(data_dir)

        # a person made from the command line while the stack runs reaches billing
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ates",
                "users",
                "create",
                "kesha",
                "--role",
                "worker",
                "--password",
                "kesha-pass-1",
                "--data-dir",
                str(data_dir),
            ],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 20
        names: list[str] = []
        while time.monotonic() < deadline and "Kesha" not in names:
            with sqlite3.connect(data_dir / "billing.db") as db:
                names = [r[0] for r in db.execute("select owner_name from accounts")]
            time.sleep(0.2)
        assert "Kesha" in names
        with sqlite3.connect(data_dir / "auth.db") as db:
            assert db.execute("select count(*) from people").fetchone()[0] == 7

        # commands find the running stack from its data directory: no --port-base
        running = json.loads((data_dir / "stack.json").read_text())
        assert running["port_base"] == base and running["broker_url"].startswith("nats://")
        token = subprocess.run(
            [
                sys.executable,
                "-m",
                "ates",
                "token",
                "admin",
                "--password",
                stack.logins["admin"][1],
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(ATES_DATA_DIR=str(data_dir)),
        )
        assert token.returncode == 0, token.stderr
        assert token.stdout.count(".") == 2  # a JWT
    finally:
        out = stack.stop()
    assert stack.process.returncode == 0, out
    assert "stopped." in out
    assert "warning:" not in out, out  # every service exited 0 on SIGTERM
    assert not _nats_processes(data_dir), "nats-server was left running"
    assert not (data_dir / "stack.json").exists(), "a stopped stack is not found any more"
    for offset in range(5):
        assert port_is_free(base + offset)

    # again, on the same data: no new demo people, everyone still there
    again = start_stack(data_dir, base)
    try:
        with sqlite3.connect(data_dir / "auth.db") as db:
            assert db.execute("select count(*) from people").fetchone()[0] == 7
    finally:
        again.stop()
    assert again.process.returncode == 0


def test_up_refuses_a_taken_port_with_a_clear_message(tmp_path: Path) -> None:
    ports = reserve_ports()
    base = ports.base
    try:
        ports.listen(base + 2)  # someone else's server on billing's port
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "ates",
                "up",
                "--data-dir",
                str(tmp_path),
                "--port-base",
                str(base),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        ports.release()
    assert result.returncode != 0
    assert f"billing :{base + 2}" in result.stderr
    assert "ATES_PORT_BASE" in result.stderr


def test_a_bad_setting_fails_at_start_naming_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ates", "up", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ATES_TIMEZONE": "Atlantis/Capital"},
    )
    assert result.returncode == 2
    assert "ATES_TIMEZONE" in result.stderr
    assert "Traceback" not in result.stderr
