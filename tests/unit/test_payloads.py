"""Every typed payload (``ates.schemas.<domain>``) says what its JSON Schema says: the
schema and the Python type describe the same event version once, in two languages.

For each registered event version there is exactly one class, with the schema's property
names as its fields; a required property is a field without a default, an optional one
defaults to ``None``; and the JSON types map to the annotations: string -> ``str``,
integer -> ``int``, boolean -> ``bool``, an enum -> ``Literal`` of the same values, null
allowed (or the property optional) -> ``| None``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import pytest

from ates.platform.events import Event, Registry, default_registry
from ates.platform.events.payload import Payload, WrongEvent
from ates.schemas import PAYLOADS, accounts, billing, payload_of, tasks
from ates.schemas.billing import TransactionApplied
from ates.schemas.tasks import TaskAssigned, TaskCreated, TaskCreatedV1

REGISTRY = default_registry()
CLASSES = (*accounts.PAYLOADS, *tasks.PAYLOADS, *billing.PAYLOADS)
JSON_TYPES: dict[str, type] = {"string": str, "integer": int, "boolean": bool, "null": type(None)}


def mismatches(cls: type[Payload], registry: Registry = REGISTRY) -> list[str]:
    """How ``cls`` differs from the schema of its event version (nothing: it matches)."""
    schema = registry.get(cls.event_name, cls.event_version).schema
    properties: dict[str, Any] = schema["properties"]
    required = set(schema.get("required", ()))
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    found = []
    if set(fields) != set(properties):
        found.append(f"fields {sorted(fields)} != properties {sorted(properties)}")
    for name in sorted(set(fields) & set(properties)):
        has_default = fields[name].default is not dataclasses.MISSING
        if name in required and has_default:
            found.append(f"{name}: required, but the field has a default")
        if name not in required and (not has_default or fields[name].default is not None):
            found.append(f"{name}: optional, but the field does not default to None")
        expected = annotation_of(properties[name], nullable=name not in required)
        if _members(hints[name]) != _members(expected):
            found.append(f"{name}: annotated {hints[name]}, the schema says {expected}")
    return found


def annotation_of(prop: dict[str, Any], *, nullable: bool) -> Any:
    """The annotation a property's schema calls for."""
    if "enum" in prop:
        values = [v for v in prop["enum"] if v is not None]
        members: set[Any] = {Literal[tuple(values)]}
        nullable = nullable or None in prop["enum"]
    else:
        kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        members = {JSON_TYPES[kind] for kind in kinds}
    if nullable:
        members.add(type(None))
    return _union(members)


def _union(members: set[Any]) -> Any:
    result = None
    for member in sorted(members, key=lambda m: (m is type(None), repr(m))):  # None last
        result = member if result is None else result | member
    return result


def _members(annotation: Any) -> frozenset[Any]:
    """``str | None`` -> {str, NoneType}; ``Literal["a", "b"]`` -> {("Literal", {"a", "b"})}."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return frozenset().union(*(_members(a) for a in typing.get_args(annotation)))
    if typing.get_origin(annotation) is Literal:
        return frozenset({("Literal", frozenset(typing.get_args(annotation)))})
    return frozenset({annotation})


def test_every_registered_event_version_has_exactly_one_class() -> None:
    versions = Counter((cls.event_name, cls.event_version) for cls in CLASSES)
    assert [key for key, count in versions.items() if count > 1] == []
    assert set(versions) == {(v.name, v.version) for v in REGISTRY}
    assert set(PAYLOADS.values()) == set(CLASSES)


def test_a_class_sits_in_its_domains_module_named_as_docs_events_says() -> None:
    for cls in CLASSES:
        assert cls.__module__ == f"ates.schemas.{REGISTRY.domain_of(cls.event_name)}"
        newest = cls.event_version == REGISTRY.latest_version(cls.event_name)
        expected = cls.event_name if newest else f"{cls.event_name}V{cls.event_version}"
        assert cls.__name__ == expected


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.event_name}-v{c.event_version}")
def test_a_class_says_what_its_schema_says(cls: type[Payload]) -> None:
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen
    assert "__slots__" in cls.__dict__
    assert mismatches(cls) == []


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.event_name}-v{c.event_version}")
def test_the_schemas_examples_read_and_write_unchanged(cls: type[Payload]) -> None:
    schema = REGISTRY.get(cls.event_name, cls.event_version).schema
    for example in schema["examples"]:
        assert cls.from_data(example).to_data() == example


def test_the_check_finds_a_field_that_differs() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Drifted(Payload):
        event_name: typing.ClassVar[str] = "TaskAssigned"
        event_version: typing.ClassVar[int] = 1

        task_public_id: str
        assignee_public_id: int  # the schema says string
        previous_assignee_public_id: str  # the schema allows null
        reason: Literal["created", "shuffled"]  # the schema says "shuffle"
        shuffle_id: str | None = None  # the schema requires it
        extra: str | None = None  # the schema knows no such property

    assert mismatches(Drifted) == [
        "fields ['assignee_public_id', 'extra', 'previous_assignee_public_id', 'reason',"
        " 'shuffle_id', 'task_public_id'] != properties ['assignee_public_id',"
        " 'previous_assignee_public_id', 'reason', 'shuffle_id', 'task_public_id']",
        "assignee_public_id: annotated <class 'int'>, the schema says <class 'str'>",
        "previous_assignee_public_id: annotated <class 'str'>, the schema says str | None",
        "reason: annotated typing.Literal['created', 'shuffled'], the schema says"
        " typing.Literal['created', 'shuffle']",
        "shuffle_id: required, but the field has a default",
    ]


def test_an_optional_field_left_none_is_left_out() -> None:
    applied = TransactionApplied(
        transaction_public_id="6f1c2c9e-3333-4a4a-9a9a-000000000003",
        owner_public_id="6f1c2c9e-1111-4a4a-9a9a-000000000001",
        kind="reward",
        debit_cents=0,
        credit_cents=2500,
        balance_after_cents=2500,
        task_public_id=None,  # required, nullable: sent as null
        business_date="2026-11-26",
        applied_at="2026-11-26T10:00:00Z",
    )
    data = applied.to_data()
    assert "description" not in data and data["task_public_id"] is None
    REGISTRY.validate("TransactionApplied", 2, data)


def test_a_handler_reads_the_newest_version_of_its_event() -> None:
    task = "6f1c2c9e-2222-4a4a-9a9a-000000000002"
    v1 = Event("TaskCreated", 1, {"public_id": task, "title": "[P-1] Fix", "description": ""}, "x")
    read = REGISTRY.upcast(v1)
    assert TaskCreated.of(read) == TaskCreated(task, "Fix", "P-1", "")
    assert payload_of(read) == TaskCreated(task, "Fix", "P-1", "")
    assert payload_of(v1) == TaskCreatedV1(task, "[P-1] Fix", "")
    with pytest.raises(WrongEvent, match="TaskCreated reads TaskCreated v2, not TaskCreated v1"):
        TaskCreated.of(v1)
    with pytest.raises(WrongEvent):
        TaskAssigned.of(read)


def test_fields_a_newer_producer_added_are_ignored() -> None:
    data = {**_assigned().to_data(), "added_in_v2": "ignored"}
    assert TaskAssigned.from_data(data) == _assigned()


def _assigned() -> TaskAssigned:
    return TaskAssigned(
        task_public_id="6f1c2c9e-2222-4a4a-9a9a-000000000002",
        assignee_public_id="6f1c2c9e-1111-4a4a-9a9a-000000000001",
        previous_assignee_public_id=None,
        reason="created",
        shuffle_id=None,
    )


def test_services_emit_typed_payloads_only() -> None:
    """``uow.emit_data`` is for tests and tools; what a service emits, mypy checks."""
    services = Path(__file__).resolve().parents[2] / "src" / "ates" / "services"
    using = [
        str(path.relative_to(services))
        for path in sorted(services.rglob("*.py"))
        if "emit_data(" in path.read_text(encoding="utf-8")
    ]
    assert using == []
