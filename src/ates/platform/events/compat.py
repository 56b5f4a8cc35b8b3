"""The registry's compatibility rule, run by ``ates schemas check`` and in CI.

For every event with versions N and N+1:

1. **Backward** (new consumers read old events): an upcaster N -> N+1 is registered, and
   every example of version N, upcast, is valid under N+1.
2. **Forward** (old consumers read new events): every field required by N is still
   required by N+1 with the same JSON type, N does not forbid extra properties, and every
   example of N+1 is valid under N.
3. **Frozen**: a released schema file never changes; its fingerprint is kept in
   ``schemas/registry.lock``. Changing a released file is an error: add a version instead.

Every schema must carry at least one example, valid under its own schema.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from ates.platform.events.registry import InvalidEvent, Registry, SchemaVersion


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def fingerprint(schema: dict[str, Any]) -> str:
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def lock_entries(registry: Registry) -> dict[str, str]:
    return {item.path: fingerprint(item.schema) for item in registry}


def check(registry: Registry, lock: dict[str, str] | None = None) -> list[Problem]:
    problems: list[Problem] = []
    for name in registry.names():
        versions = registry.versions_of(name)
        numbers = [v.version for v in versions]
        if numbers != list(range(1, len(numbers) + 1)):
            problems.append(Problem(name, f"versions must be 1..N without gaps, got {numbers}"))
        for item in versions:
            problems += _check_examples(registry, item)
        for old, new in itertools.pairwise(versions):
            problems += _check_pair(registry, old, new)
    for path, digest in (lock or {}).items():
        current = {item.path: item for item in registry}.get(path)
        if current is None:
            problems.append(Problem(path, "a released schema was removed"))
        elif fingerprint(current.schema) != digest:
            problems.append(Problem(path, "a released schema changed; add a new version instead"))
    return problems


def _examples(item: SchemaVersion) -> list[dict[str, Any]]:
    return [e for e in item.schema.get("examples", []) if isinstance(e, dict)]


def _check_examples(registry: Registry, item: SchemaVersion) -> list[Problem]:
    if not _examples(item):
        return [Problem(item.path, "needs at least one example")]
    problems = []
    for example in _examples(item):
        try:
            registry.validate(item.name, item.version, example)
        except InvalidEvent as error:
            problems.append(Problem(item.path, f"example is invalid: {error}"))
    return problems


def _json_type(prop: Any) -> Any:
    if not isinstance(prop, dict):
        return None
    kind = prop.get("type")
    if kind is None and "enum" in prop:
        return "enum"
    return tuple(sorted(kind)) if isinstance(kind, list) else kind


def _check_pair(registry: Registry, old: SchemaVersion, new: SchemaVersion) -> list[Problem]:
    where = f"{new.name} v{old.version}->v{new.version}"
    problems = []
    if registry.upcaster(old.name, old.version) is None:
        problems.append(Problem(where, "no upcaster registered (ates.platform.events.versions)"))
    if old.schema.get("additionalProperties") is False:
        problems.append(
            Problem(
                where,
                f"v{old.version} forbids extra fields: old consumers would reject every new event",
            )
        )
    old_props, new_props = old.schema.get("properties", {}), new.schema.get("properties", {})
    new_required = set(new.schema.get("required", []))
    for field in old.schema.get("required", []):
        if field not in new_required:
            problems.append(
                Problem(
                    where,
                    f"field {field!r} is required by v{old.version} "
                    f"but no longer by v{new.version}",
                )
            )
        elif _json_type(old_props.get(field)) != _json_type(new_props.get(field)):
            problems.append(Problem(where, f"field {field!r} changed its type"))
    for example in _examples(new):
        try:
            registry.validate(old.name, old.version, example)
        except InvalidEvent as error:
            problems.append(
                Problem(where, f"a v{new.version} example breaks v{old.version} consumers: {error}")
            )
    upcast = registry.upcaster(old.name, old.version)
    if upcast is not None:
        for example in _examples(old):
            try:
                registry.validate(new.name, new.version, upcast(dict(example)))
            except InvalidEvent as error:
                problems.append(
                    Problem(
                        where,
                        f"an upcast v{old.version} example is invalid "
                        f"under v{new.version}: {error}",
                    )
                )
    return problems
