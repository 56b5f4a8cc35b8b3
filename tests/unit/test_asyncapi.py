"""The AsyncAPI 3 document of the event catalog: valid under the official AsyncAPI 3.0.0
JSON Schema (tests/asyncapi/, from the published ``@asyncapi/specs`` package), and true
to the registry and to the services' specs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from typer.testing import CliRunner

from ates.cli import app
from ates.platform.catalog import document
from ates.platform.events import default_registry

OFFICIAL = Path(__file__).parents[1] / "asyncapi" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    schema = json.loads(OFFICIAL.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema"
    return Draft7Validator(schema)


def problems(validator: Draft7Validator, doc: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(doc)
    ]


def test_the_document_is_valid_asyncapi_3(validator: Draft7Validator) -> None:
    assert problems(validator, document()) == []


def test_the_official_schema_does_check_what_the_document_says(
    validator: Draft7Validator,
) -> None:
    """The validation above is not vacuous: the same document with AsyncAPI 2 habits, or
    a reference to nowhere in the wrong shape, is refused."""
    publish = copy.deepcopy(document())
    next(iter(publish["operations"].values()))["action"] = "publish"  # AsyncAPI 2's word
    assert problems(validator, publish)
    no_address = copy.deepcopy(document())
    next(iter(no_address["channels"].values()))["address"] = 42
    assert problems(validator, no_address)
    old = copy.deepcopy(document())
    old["asyncapi"] = "2.6.0"
    assert problems(validator, old)
    bad_payload = copy.deepcopy(document())
    message = next(iter(bad_payload["components"]["messages"].values()))
    message["payload"]["allOf"][1]["properties"]["data"]["type"] = 42  # not a JSON type
    assert problems(validator, bad_payload)


def test_every_version_of_every_event_is_a_message_of_its_channel() -> None:
    doc = document()
    registry = default_registry()
    for item in registry:
        channel = doc["channels"][f"{item.domain}.{item.name}"]
        assert channel["address"] == f"{item.domain}.{item.name}"
        key = f"{item.name}.v{item.version}"
        assert channel["messages"][key] == {"$ref": f"#/components/messages/{key}"}
        message = doc["components"]["messages"][key]
        envelope, specific = message["payload"]["allOf"]
        assert envelope == {"$ref": "#/components/schemas/Envelope"}
        data = specific["properties"]["data"]
        assert data["required"] == item.schema["required"]
        assert data["properties"] == item.schema["properties"]
        assert message["examples"][0]["payload"]["data"] == item.schema["examples"][0]
    assert set(doc["components"]["schemas"]["Envelope"]["required"]) == {
        "event_id",
        "event_name",
        "event_version",
        "event_time",
        "producer",
        "data",
    }


def test_operations_say_who_produces_and_who_consumes() -> None:
    operations = document()["operations"]
    sends = operations["tasks.sends.TaskCreated"]
    assert sends["action"] == "send"
    assert sends["channel"] == {"$ref": "#/channels/tasks.TaskCreated"}
    newest = default_registry().latest_version("TaskCreated")
    assert sends["messages"] == [
        {"$ref": f"#/channels/tasks.TaskCreated/messages/TaskCreated.v{newest}"}
    ]
    for consumer in ("billing", "analytics", "notifications"):
        receives = operations[f"{consumer}.receives.TaskCreated"]
        assert receives["action"] == "receive"
        assert len(receives["messages"]) == len(default_registry().versions_of("TaskCreated"))
    assert "tasks.receives.TaskCreated" not in operations
    assert operations["auth.sends.AccountCreated"]["action"] == "send"
    assert operations["billing.sends.TransactionApplied"]["action"] == "send"
    assert operations["analytics.receives.TransactionApplied"]["action"] == "receive"
    assert "notifications.receives.TaskCompleted" not in operations


def test_schemas_docs_writes_the_asyncapi_document(tmp_path: Path) -> None:
    catalog, asyncapi = tmp_path / "events.md", tmp_path / "asyncapi.json"
    result = CliRunner().invoke(
        app, ["schemas", "docs", "--output", str(catalog), "--asyncapi", str(asyncapi)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(asyncapi.read_text()) == document()
    assert catalog.read_text().startswith("# Event catalog")


def test_the_document_in_docs_is_generated_from_the_registry() -> None:
    shipped = Path(__file__).parents[2] / "docs" / "asyncapi.json"
    assert json.loads(shipped.read_text()) == document(), "run `ates schemas docs`"
