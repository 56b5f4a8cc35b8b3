"""What the machine and each process spent: CPU seconds and peak memory from ``/proc``,
the machine's description, and the broker's own count of events published and delivered.

CPU of a process is ``utime + stime`` of ``/proc/<pid>/stat`` plus ``cutime + cstime``
(children it has waited for) plus the same of every live descendant. Peak memory is
``VmHWM`` of ``/proc/<pid>/status``: the high-water mark since the process started.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class Watched:
    """A process to account for, under a label (a service, the broker)."""

    label: str
    pid: int


def _stat(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces: split after it
    return raw[raw.rindex(")") + 2 :].split()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            tree[int(fields[1])].append(int(entry.name))  # fields[1] is the parent's pid
    return tree


def _family(pid: int, tree: Mapping[int, list[int]]) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, ()))
    return found


def cpu_seconds(watched: Iterable[Watched]) -> dict[str, float]:
    """CPU seconds used so far by each label's processes and their descendants."""
    tree = _children()
    spent: dict[str, float] = defaultdict(float)
    for item in watched:
        for pid in _family(item.pid, tree):
            fields = _stat(pid)
            if fields is not None:
                # utime, stime, cutime, cstime are fields 14-17 of stat (11-14 here)
                spent[item.label] += sum(int(v) for v in fields[11:15]) / TICK
    return dict(spent)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = (PROC / str(pid) / "status").read_text().splitlines()
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
        return kib / 1024
    return None


def peak_rss(watched: Iterable[Watched]) -> dict[str, float]:
    """The largest peak of any one process of each label, in MB."""
    peaks: dict[str, float] = {}
    for item in watched:
        mb = peak_rss_mb(item.pid)
        if mb is not None:
            peaks[item.label] = max(peaks.get(item.label, 0.0), mb)
    return peaks


def processes_named(command: str, label: str) -> list[Watched]:
    """Every process whose command name is ``command`` (a shared server's processes)."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == command:
                    found.append(Watched(label, int(entry.name)))
    return found


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    with contextlib.suppress(OSError, ValueError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        memory_gb = round(int(first.split()[1]) / 1024**2, 1)
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": memory_gb,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# --- the broker's count of events ---------------------------------------------------------


@dataclass(frozen=True)
class EventCounts:
    published: int  # messages in every stream
    delivered: dict[str, int]  # deliveries per consuming service (its durable groups)

    def __sub__(self, before: EventCounts) -> EventCounts:
        return EventCounts(
            self.published - before.published,
            {s: n - before.delivered.get(s, 0) for s, n in self.delivered.items()},
        )

    @property
    def consumed(self) -> int:
        return sum(self.delivered.values())


class NatsCounter:
    """Counts from JetStream itself (stream sizes, consumer deliveries), leaving out the
    benchmark's own tap. Only for a NATS broker; ``count`` is None elsewhere."""

    def __init__(self, url: str, services: Iterable[str], skip_prefix: str = "bench-") -> None:
        self.url = url
        self.services = tuple(services)
        self.skip_prefix = skip_prefix
        self._nc: Any = None

    async def __aenter__(self) -> NatsCounter:
        if self.url.startswith(("nats://", "tls://")):
            import nats

            self._nc = await nats.connect(self.url, name="ates-bench-counter")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._nc is not None:
            await self._nc.close()

    async def count(self) -> EventCounts | None:
        if self._nc is None:
            return None
        js = self._nc.jsm()
        published, delivered = 0, defaultdict[str, int](int)
        for stream in await js.streams_info():
            published += int(stream.state.messages)
            for consumer in await js.consumers_info(stream.config.name):
                name = str(consumer.name)
                if name.startswith(self.skip_prefix) or consumer.delivered is None:
                    continue
                service = next((s for s in self.services if name.startswith(s)), name)
                delivered[service] += int(consumer.delivered.consumer_seq)
        return EventCounts(published, dict(delivered))
