from ates.platform.events.envelope import Event, MalformedEnvelope
from ates.platform.events.registry import InvalidEvent, Registry, UnknownEvent, default_registry

__all__ = [
    "Event",
    "InvalidEvent",
    "MalformedEnvelope",
    "Registry",
    "UnknownEvent",
    "default_registry",
]
