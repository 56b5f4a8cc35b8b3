"""The schema registry: JSON-Schema files ``<domain>/<EventName>/<version>.json``.

Producers validate before anything is written; consumers validate before anything is
applied and upcast older versions to the newest one they know (see ``versions``).

Validation runs on every event twice (produced, consumed), so it uses ``jsonschema-rs``
(compiled; about 1 µs an event where the pure-Python ``jsonschema`` took 120 µs), with
formats checked (``date-time``, ``date``, ``uuid``). ``jsonschema`` itself still checks
the schema files against the 2020-12 meta-schema when they load.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

from ates.platform.events.envelope import Event
from ates.platform.events.versions import UPCASTERS, Upcaster

# The aggregate each event is about: the field of its data naming it. A broker that
# partitions its log (Kafka) keeps one aggregate's events in one partition, in order, so
# a task's Created, Assigned and Completed (or a person's movements) arrive as written.
AGGREGATE_KEYS: dict[str, str] = {
    "AccountCreated": "public_id",
    "AccountUpdated": "public_id",
    "AccountRoleChanged": "public_id",
    "AccountDeactivated": "public_id",
    "AccountPasswordReset": "public_id",
    "TaskCreated": "public_id",
    "TaskAssigned": "task_public_id",
    "TaskCompleted": "task_public_id",
    "TaskPriced": "task_public_id",
    "TransactionApplied": "owner_public_id",
    "PayoutMade": "owner_public_id",
    "DayClosed": "business_date",
}


class UnknownEvent(LookupError):
    pass


class InvalidEvent(ValueError):
    """The event does not match its registered schema."""


@dataclass(frozen=True)
class SchemaVersion:
    domain: str
    name: str
    version: int
    schema: dict[str, Any]
    validator: jsonschema_rs.Validator

    @classmethod
    def of(cls, domain: str, name: str, version: int, schema: dict[str, Any]) -> SchemaVersion:
        Draft202012Validator.check_schema(schema)
        validator = jsonschema_rs.validator_for(schema, validate_formats=True)
        return cls(domain, name, version, schema, validator)

    @property
    def path(self) -> str:
        return f"{self.domain}/{self.name}/{self.version}.json"


class Registry:
    def __init__(self, versions: list[SchemaVersion], upcasters: dict[tuple[str, int], Upcaster]):
        self._versions: dict[tuple[str, int], SchemaVersion] = {}
        self._domains: dict[str, str] = {}
        for item in versions:
            known = self._domains.setdefault(item.name, item.domain)
            if known != item.domain:
                raise ValueError(
                    f"{item.name} is registered in two domains: {known}, {item.domain}"
                )
            self._versions[(item.name, item.version)] = item
        self._upcasters = upcasters
        self._latest: dict[str, int] = {}
        for name, version in self._versions:
            self._latest[name] = max(version, self._latest.get(name, 0))

    # --- lookups --------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._domains)

    def domains(self) -> list[str]:
        return sorted(set(self._domains.values()))

    def knows(self, name: str) -> bool:
        return name in self._domains

    def domain_of(self, name: str) -> str:
        try:
            return self._domains[name]
        except KeyError as error:
            raise UnknownEvent(f"no schema registered for event {name!r}") from error

    def versions_of(self, name: str) -> list[SchemaVersion]:
        self.domain_of(name)
        return sorted(
            (v for (n, _), v in self._versions.items() if n == name), key=lambda v: v.version
        )

    def latest_version(self, name: str) -> int:
        try:
            return self._latest[name]
        except KeyError:
            raise UnknownEvent(f"no schema registered for event {name!r}") from None

    def get(self, name: str, version: int) -> SchemaVersion:
        try:
            return self._versions[(name, version)]
        except KeyError as error:
            raise UnknownEvent(f"no schema registered for {name} v{version}") from error

    def __iter__(self) -> Iterator[SchemaVersion]:
        return iter(sorted(self._versions.values(), key=lambda v: (v.domain, v.name, v.version)))

    def aggregate_key(self, name: str, data: dict[str, Any]) -> str | None:
        """The id of the aggregate an event is about (see :data:`AGGREGATE_KEYS`)."""
        field = AGGREGATE_KEYS.get(name)
        value = data.get(field) if field else None
        return None if value is None else str(value)

    def upcaster(self, name: str, from_version: int) -> Upcaster | None:
        return self._upcasters.get((name, from_version))

    # --- validation -----------------------------------------------------------------

    def validate(self, name: str, version: int, data: dict[str, Any]) -> None:
        validator = self.get(name, version).validator
        if validator.is_valid(data):
            return
        errors = sorted(
            validator.iter_errors(data), key=lambda e: [str(p) for p in e.instance_path]
        )
        raise InvalidEvent(f"{name} v{version}: " + "; ".join(_describe(e) for e in errors))

    def upcast(self, event: Event) -> Event:
        """Turn an event of any version into the newest version this process knows.

        Older versions are validated and upcast step by step. A *newer* version (from a
        producer upgraded before this consumer) is read as our newest one: the
        compatibility rule keeps every new version valid under the previous ones, so it is
        validated against the newest schema we know and its extra fields are ignored."""
        latest = self.latest_version(event.event_name)
        if event.event_version > latest:
            self.validate(event.event_name, latest, event.data)
            return replace(event, event_version=latest)
        self.validate(event.event_name, event.event_version, event.data)
        data, version = event.data, event.event_version
        while version < latest:
            step = self.upcaster(event.event_name, version)
            if step is None:
                raise InvalidEvent(f"{event.event_name}: no upcaster from v{version}")
            data, version = step(dict(data)), version + 1
            self.validate(event.event_name, version, data)
        if version == event.event_version:
            return event
        return replace(event, event_version=version, data=data)


def _describe(error: jsonschema_rs.ValidationError) -> str:
    where = ".".join(str(part) for part in error.instance_path) or "data"
    return f"{where}: {error.message}"


def load_versions(root: Traversable) -> list[SchemaVersion]:
    found = []
    for domain in sorted(root.iterdir(), key=lambda p: p.name):
        if not domain.is_dir() or domain.name.startswith(("_", ".")):
            continue
        for event in sorted(domain.iterdir(), key=lambda p: p.name):
            if not event.is_dir() or event.name.startswith(("_", ".")):
                continue
            for file in event.iterdir():
                if not file.name.endswith(".json"):
                    continue
                schema = json.loads(file.read_text(encoding="utf-8"))
                version = int(file.name.removesuffix(".json"))
                found.append(SchemaVersion.of(domain.name, event.name, version, schema))
    return found


@cache
def default_registry() -> Registry:
    """The registry shipped in ``ates.schemas`` with the upcasters of ``versions``."""
    return Registry(load_versions(resources.files("ates.schemas")), UPCASTERS)
