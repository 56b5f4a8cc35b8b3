"""Where the running embedded stack is: a small file ``ates up`` keeps in its data dir.

``ates up`` writes ``<data dir>/stack.json`` once every service answers (its process id,
the port base, the host and the broker URL) and removes it when it stops. Commands that
talk to the running system (``ates token``, ``ates replay``, ``ates simulate``, later
``ates status``) read it, so they need no ``--port-base``: the data directory is enough.
A file left behind by a stack that died without cleaning up names a process that is gone
and is ignored.

Standard library only: reading it must not slow a command's start.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "stack.json"


@dataclass(frozen=True)
class RunningStack:
    pid: int
    host: str
    port_base: int
    broker_url: str

    def url(self, port_offset: int) -> str:
        return f"http://{self.host}:{self.port_base + port_offset}"


def path_in(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def write(data_dir: Path, stack: RunningStack) -> Path:
    """Record the stack (atomically: a reader never sees half a file)."""
    target = path_in(data_dir)
    partial = target.with_suffix(".json.partial")
    partial.write_text(json.dumps(asdict(stack), indent=2) + "\n")
    partial.replace(target)
    return target


def remove(data_dir: Path, pid: int | None = None) -> None:
    """Forget the stack; with ``pid``, only if the file is that process's."""
    target = path_in(data_dir)
    if pid is not None:
        found = _load(target)
        if found is not None and found.pid != pid:
            return  # another stack took this data dir over: not ours to remove
    target.unlink(missing_ok=True)


def find(data_dir: Path) -> RunningStack | None:
    """The stack running on ``data_dir``, or None (none recorded, or its process is gone)."""
    found = _load(path_in(data_dir))
    if found is None or not _alive(found.pid):
        return None
    return found


def _load(target: Path) -> RunningStack | None:
    try:
        data = json.loads(target.read_text())
        return RunningStack(
            pid=int(data["pid"]),
            host=str(data["host"]),
            port_base=int(data["port_base"]),
            broker_url=str(data["broker_url"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal sent: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True
