"""Typed event payloads: the ``data`` of one event version as a Python class.

Each event version has one frozen ``@dataclass(slots=True)`` subclass of :class:`Payload`
(in ``ates.schemas.<domain>``, beside its JSON Schema), which names its event and version.
Fields hold the data as it travels (JSON types: ``str`` for ids, dates and times, ``int``
cents, ``Literal`` for an enum, ``X | None`` where the schema allows null): a producer
builds one and ``uow.emit`` takes it; a handler reads one with ``TaskAssigned.of(event)``.
``tests/unit/test_payloads.py`` holds every class to its schema.

A payload checks nothing itself: the registry validates the data against the schema on
emit and on consume, as it does for any event. ``to_data`` and ``from_data`` copy the
fields by precomputed name, with no deep copy (``dataclasses.asdict`` costs ten times
``to_data``): a few µs to build and read one, less than its envelope's JSON
(``bench/payloads.py``) — a shuffle emits 100,000 of them.

A field with a default is one the schema does not require, and it cannot be null there:
``to_data`` leaves it out while it is ``None``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from ates.platform.events.envelope import Event


class WrongEvent(TypeError):
    """A payload class was asked to read an event of another name or version."""


class Payload:
    """Base of the typed payloads; a subclass is a frozen slotted dataclass."""

    __slots__ = ()

    event_name: ClassVar[str]
    event_version: ClassVar[int]

    def to_data(self) -> dict[str, Any]:
        """The event's ``data``, as it goes into the envelope."""
        names, optional = _shape(type(self))
        data = {name: getattr(self, name) for name in names}
        for name in optional:
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Read valid ``data`` of this version; fields unknown to it are ignored (a newer
        producer's additions)."""
        return cls(*map(data.get, _shape(cls)[0]))

    @classmethod
    def of(cls, event: Event) -> Self:
        """The payload of ``event``, which must be this class's event and version (a
        consumer's handler gets events upcast to the newest version it knows)."""
        if event.event_name != cls.event_name or event.event_version != cls.event_version:
            raise WrongEvent(
                f"{cls.__name__} reads {cls.event_name} v{cls.event_version}, "
                f"not {event.event_name} v{event.event_version}"
            )
        return cls.from_data(event.data)


_Shape = tuple[tuple[str, ...], tuple[str, ...]]  # every field, the optional ones
_SHAPES: dict[type[Payload], _Shape] = {}


def _shape(cls: type[Payload]) -> _Shape:
    shape = _SHAPES.get(cls)
    if shape is None:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        shape = _SHAPES[cls] = (
            tuple(f.name for f in fields),
            tuple(f.name for f in fields if f.default is not dataclasses.MISSING),
        )
    return shape
