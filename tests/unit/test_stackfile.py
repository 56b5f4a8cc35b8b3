"""Finding the running embedded stack from its data directory (``ates.stackfile``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ates import stackfile
from ates.clitools import stack_settings


def _stack(pid: int) -> stackfile.RunningStack:
    return stackfile.RunningStack(pid, "127.0.0.1", 18000, "nats://127.0.0.1:4333")


def test_a_running_stack_is_found_and_forgotten_when_it_stops(tmp_path: Path) -> None:
    assert stackfile.find(tmp_path) is None
    stackfile.write(tmp_path, _stack(os.getpid()))
    found = stackfile.find(tmp_path)
    assert found == _stack(os.getpid())
    assert found.url(1) == "http://127.0.0.1:18001"
    stackfile.remove(tmp_path, pid=os.getpid() + 1)  # someone else's stop: not ours
    assert stackfile.find(tmp_path) is not None
    stackfile.remove(tmp_path, pid=os.getpid())
    assert stackfile.find(tmp_path) is None


def test_a_file_left_by_a_dead_stack_or_broken_is_ignored(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stackfile.write(tmp_path, _stack(int(gone.stdout)))
    assert stackfile.find(tmp_path) is None
    stackfile.path_in(tmp_path).write_text("{not json")
    assert stackfile.find(tmp_path) is None


def test_commands_take_ports_and_broker_from_the_running_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ATES_PORT_BASE", "ATES_HOST", "ATES_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    assert stack_settings(tmp_path).port_base == 8000  # nothing running: the defaults
    stackfile.write(tmp_path, _stack(os.getpid()))
    settings = stack_settings(tmp_path)
    assert settings.public_url("auth") == "http://127.0.0.1:18000"
    assert settings.broker_url == "nats://127.0.0.1:4333"
    # what the person says still wins
    assert stack_settings(tmp_path, port_base=9000).port("tasks") == 9001
    monkeypatch.setenv("ATES_PORT_BASE", "9100")
    assert stack_settings(tmp_path).port_base == 9100
