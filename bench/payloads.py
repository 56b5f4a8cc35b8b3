"""What a typed event payload costs: building one and reading one, per event.

    .venv/bin/python bench/payloads.py [--number 100000] [--repeat 7]

A producer builds a payload and ``uow.emit`` turns it into the event's ``data``
(``to_data``); a handler reads the ``data`` of a consumed event back into its class
(``TaskAssigned.of(event)``, or ``payload_of(event)`` for a run of mixed events). The
figures are µs of process CPU time per call, the fastest of ``--repeat`` runs (the least
disturbed by other work on the machine), beside what the event path already spends on each event
(validation, the envelope's JSON) and beside the dict literal producers built before.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import timeit
from collections.abc import Callable
from typing import Any

from ates.platform.events import Event, default_registry
from ates.schemas import payload_of
from ates.schemas.billing import TransactionApplied
from ates.schemas.tasks import TaskAssigned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    registry = default_registry()
    data: dict[str, Any] = dict(registry.get("TransactionApplied", 2).schema["examples"][0])
    applied = TransactionApplied(**data)
    event = Event("TransactionApplied", 2, data, "billing")
    ids = ("6f1c2c9e-2222-4a4a-9a9a-000000000002", "6f1c2c9e-1111-4a4a-9a9a-000000000001")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("TransactionApplied(**fields)  (10 fields)", lambda: TransactionApplied(**data)),
        ("  .to_data()", applied.to_data),
        ("TransactionApplied.of(event)", lambda: TransactionApplied.of(event)),
        ("payload_of(event)", lambda: payload_of(event)),
        (
            "TaskAssigned(...).to_data()  (a shuffle's)",
            lambda: TaskAssigned(*ids, None, "shuffle", ids[0]).to_data(),
        ),
        ("for comparison: the dict literal of before", lambda: dict(data)),
        ("for comparison: dataclasses.asdict", lambda: dataclasses.asdict(applied)),
        (
            "already on the path: registry.validate",
            lambda: registry.validate("TransactionApplied", 2, data),
        ),
        ("already on the path: Event(...).to_json()", lambda: Event(**_envelope(data)).to_json()),
    ]
    for label, call in cases:
        timer = timeit.Timer(call, timer=time.process_time)
        best = min(timer.repeat(number=args.number, repeat=args.repeat)) / args.number
        print(f"{label:45} {best * 1e6:6.2f} µs")


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {"event_name": "TransactionApplied", "event_version": 2, "data": data, "producer": "b"}


if __name__ == "__main__":
    main()
