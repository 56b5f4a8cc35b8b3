"""A server aTES runs as a child process (the local Kafka, the bundled NATS server):
started with its output in a log file, waited for until it answers, stopped in order."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def spawn(command: Sequence[str], log_file: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session (a Ctrl-C reaches the caller, which stops it
    in order), its output appended to ``log_file``."""
    with log_file.open("ab") as out:
        return subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout: float,
    exited: Callable[[int], Exception],
) -> bool:
    """Poll ``ready`` until it holds (True) or ``timeout`` seconds pass (False). A process
    that ends first raises ``exited(its exit code)``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise exited(code)
        if ready():
            return True
        time.sleep(0.05)
    return False


def terminate(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """SIGTERM (a clean shutdown), then SIGKILL if it takes longer than ``timeout``; True
    when it ended on SIGTERM."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True
