from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from ates.platform.events import Event, InvalidEvent, MalformedEnvelope, default_registry
from ates.platform.events.compat import check, lock_entries
from ates.platform.events.registry import Registry, SchemaVersion
from ates.platform.events.versions import UPCASTERS, split_jira_id


def test_envelope_round_trip_keeps_every_field() -> None:
    event = Event(
        event_name="DayClosed",
        event_version=1,
        producer="billing",
        data={"business_date": "2026-11-25"},
        trace="00-abc-def-01",
    )
    again = Event.from_json(event.to_json())
    assert again == event
    assert json.loads(event.to_json())["event_time"].endswith("Z")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1]", "JSON object"),
        (b"{", "not JSON"),
        (json.dumps({"event_id": "x"}).encode(), "misses"),
        (
            json.dumps(
                {
                    "event_id": "nope",
                    "event_name": "DayClosed",
                    "event_version": 1,
                    "event_time": "2026-01-01T00:00:00Z",
                    "producer": "p",
                    "data": {},
                }
            ).encode(),
            "bad event_id",
        ),
        (
            json.dumps(
                {
                    "event_id": str(uuid.uuid4()),
                    "event_name": "DayClosed",
                    "event_version": 1,
                    "event_time": "2026-01-01T00:00:00",
                    "producer": "p",
                    "data": {},
                }
            ).encode(),
            "time zone",
        ),
        (
            json.dumps(
                {
                    "event_id": str(uuid.uuid4()),
                    "event_name": "DayClosed",
                    "event_version": True,
                    "event_time": "2026-01-01T00:00:00Z",
                    "producer": "p",
                    "data": {},
                }
            ).encode(),
            "positive integer",
        ),
    ],
)
def test_malformed_envelopes_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(MalformedEnvelope, match=message):
        Event.from_json(body)


def test_validation_names_the_field() -> None:
    registry = default_registry()
    with pytest.raises(InvalidEvent, match="assign_fee_cents"):
        registry.validate(
            "TaskPriced",
            1,
            {"task_public_id": str(uuid.uuid4()), "assign_fee_cents": 12.5, "reward_cents": 3000},
        )
    with pytest.raises(InvalidEvent, match="amount_cents"):
        registry.validate(
            "PayoutMade",
            1,
            {
                "owner_public_id": str(uuid.uuid4()),
                "amount_cents": -5,
                "business_date": "2026-11-25",
            },
        )


def test_every_event_of_the_design_catalog_is_registered() -> None:
    registry = default_registry()
    expected = {
        ("accounts", "AccountCreated", 1),
        ("accounts", "AccountUpdated", 1),
        ("accounts", "AccountRoleChanged", 1),
        ("accounts", "AccountDeactivated", 1),
        ("tasks", "TaskCreated", 1),
        ("tasks", "TaskCreated", 2),
        ("tasks", "TaskAssigned", 1),
        ("tasks", "TaskCompleted", 1),
        ("billing", "TaskPriced", 1),
        ("billing", "TransactionApplied", 1),
        ("billing", "DayClosed", 1),
        ("billing", "PayoutMade", 1),
    }
    assert expected <= {(v.domain, v.name, v.version) for v in registry}
    assert registry.latest_version("TaskCreated") == 2


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("[POPUG-42] Sharpen the beak", ("POPUG-42", "Sharpen the beak")),
        ("  [UBERPOP-1]Feed", ("UBERPOP-1", "Feed")),
        ("No id here", (None, "No id here")),
        ("Trailing [X-1]", (None, "Trailing [X-1]")),
    ],
)
def test_split_jira_id(title: str, expected: tuple[str | None, str]) -> None:
    assert split_jira_id(title) == expected


def test_a_v1_task_created_is_upcast_to_v2() -> None:
    registry = default_registry()
    old = Event(
        event_name="TaskCreated",
        event_version=1,
        producer="tasks-2019",
        data={
            "public_id": str(uuid.uuid4()),
            "title": "[POPUG-7] Clean the cage",
            "description": "",
        },
    )
    new = registry.upcast(old)
    assert new.event_version == 2
    assert new.event_id == old.event_id
    assert (new.data["jira_id"], new.data["title"]) == ("POPUG-7", "Clean the cage")


def test_the_shipped_registry_passes_its_compatibility_check() -> None:
    registry = default_registry()
    assert check(registry, lock_entries(registry)) == []


# --- the compatibility rule on registries made up for the test ---------------------------


def _with_changed(mutate: Any, upcasters: Any = None) -> Registry:
    changed = []
    for item in default_registry():
        schema = copy.deepcopy(item.schema)
        mutate(item.name, item.version, schema)
        changed.append(SchemaVersion.of(item.domain, item.name, item.version, schema))
    return Registry(changed, UPCASTERS if upcasters is None else upcasters)


def test_dropping_a_required_field_in_a_new_version_is_refused() -> None:
    def drop_description(name: str, version: int, schema: dict[str, Any]) -> None:
        if (name, version) == ("TaskCreated", 2):
            schema["required"].remove("description")
            for example in schema["examples"]:
                example.pop("description")

    problems = check(_with_changed(drop_description))
    assert any("'description' is required by v1" in str(p) for p in problems)
    assert any("breaks v1 consumers" in str(p) for p in problems)


def test_changing_a_field_type_is_refused() -> None:
    def title_as_number(name: str, version: int, schema: dict[str, Any]) -> None:
        if (name, version) == ("TaskCreated", 2):
            schema["properties"]["title"] = {"type": "integer"}

    problems = check(_with_changed(title_as_number))
    assert any("'title' changed its type" in str(p) for p in problems)


def test_a_new_version_needs_an_upcaster() -> None:
    problems = check(_with_changed(lambda *_: None, upcasters={}))
    assert "TaskCreated v1->v2: no upcaster registered (ates.platform.events.versions)" in [
        str(p) for p in problems
    ]
    assert all("no upcaster registered" in str(p) for p in problems)


def test_editing_a_released_schema_is_refused() -> None:
    lock = lock_entries(default_registry())

    def reword(name: str, version: int, schema: dict[str, Any]) -> None:
        if (name, version) == ("DayClosed", 1):
            schema["description"] = "A day was closed (reworded)."

    problems = check(_with_changed(reword), lock)
    assert [str(p) for p in problems] == [
        "billing/DayClosed/1.json: a released schema changed; add a new version instead"
    ]


def test_the_event_catalog_in_docs_is_generated_from_the_registry() -> None:
    from pathlib import Path

    from ates.platform.events.docs import render_catalog

    committed = Path(__file__).parents[2] / "docs" / "events.md"
    assert committed.read_text() == render_catalog(default_registry()), (
        "docs/events.md is stale: run `ates schemas docs`"
    )


def test_a_newer_version_from_an_upgraded_producer_is_read_as_the_newest_known() -> None:
    registry = default_registry()
    future = Event(
        event_name="TaskCreated",
        event_version=3,
        producer="tasks-next",
        data={
            "public_id": str(uuid.uuid4()),
            "title": "Feed",
            "jira_id": "P-1",
            "description": "",
            "priority": "high",
        },
    )
    read = registry.upcast(future)
    assert (read.event_version, read.data["jira_id"], read.event_id) == (2, "P-1", future.event_id)
    broken = Event(
        event_name="TaskCreated",
        event_version=3,
        producer="tasks-next",
        data={"public_id": str(uuid.uuid4()), "title": "Feed"},
    )
    with pytest.raises(InvalidEvent, match="description"):
        registry.upcast(broken)


def test_every_event_names_its_aggregate_in_a_required_field() -> None:
    from ates.platform.events.registry import AGGREGATE_KEYS

    registry = default_registry()
    assert set(AGGREGATE_KEYS) == set(registry.names())
    for item in registry:
        field = AGGREGATE_KEYS[item.name]
        assert field in item.schema["required"], f"{item.path}: {field} is not required"
        example = item.schema["examples"][0]
        assert registry.aggregate_key(item.name, example) == str(example[field])


def _movement(**changes: Any) -> dict[str, Any]:
    example = dict(default_registry().get("TransactionApplied", 1).schema["examples"][0])
    return {**example, **changes}


def test_formats_are_checked_a_date_time_must_be_one() -> None:
    registry = default_registry()
    completed = {
        "task_public_id": str(uuid.uuid4()),
        "assignee_public_id": str(uuid.uuid4()),
        "completed_at": "yesterday",
    }
    with pytest.raises(InvalidEvent, match="completed_at"):
        registry.validate("TaskCompleted", 1, completed)


def test_an_amount_out_of_bounds_is_refused_even_in_an_old_version() -> None:
    registry = default_registry()
    huge = Event("TransactionApplied", 1, _movement(debit_cents=10**30), "billing")
    with pytest.raises(InvalidEvent, match="debit_cents"):
        registry.upcast(huge)  # v1 had no maximum; read as v2, which has
    fine = registry.upcast(Event("TransactionApplied", 1, _movement(), "billing"))
    assert fine.event_version == 2 and fine.data == _movement()
