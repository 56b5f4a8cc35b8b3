"""The event contracts: the JSON Schemas (``<domain>/<EventName>/<version>.json``, read by
``ates.platform.events.registry``) and, beside them, their typed payloads (``<domain>.py``,
one class per version; ``tests/unit/test_payloads.py`` holds the two to each other)."""

from __future__ import annotations

from ates.platform.events.envelope import Event
from ates.platform.events.payload import Payload
from ates.schemas import accounts, billing, tasks

# (event name, version) -> its payload class
PAYLOADS: dict[tuple[str, int], type[Payload]] = {
    (cls.event_name, cls.event_version): cls
    for cls in (*accounts.PAYLOADS, *tasks.PAYLOADS, *billing.PAYLOADS)
}


def payload_of(event: Event) -> Payload:
    """The typed payload of ``event``, for a handler of several events that tells them
    apart with ``match payload_of(event): case TaskCreated() as created: ...``."""
    return PAYLOADS[(event.event_name, event.event_version)].from_data(event.data)
