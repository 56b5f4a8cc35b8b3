"""The event catalog as an AsyncAPI 3.0 document, generated from the registry.

- a **channel** per event (``tasks.TaskCreated``: the NATS subject and the RabbitMQ
  routing key; on Kafka the domain's topic, the name in the ``event_name`` header),
  tagged with its domain, holding a **message** per version;
- a **message** per (event, version): the envelope (``components.schemas.Envelope``)
  whose ``data`` is the version's schema, with an example;
- **operations**: the producing service *sends* the newest version; each consuming
  service *receives* every version (older ones are upcast on arrival);
- **servers**: the three brokers aTES runs on, as the reference deployment names them.

The registry's files are JSON Schema 2020-12; the keywords they use (type, properties,
required, enum, format, bounds, pattern) mean the same in the AsyncAPI Schema format
(a superset of draft 07), so each is embedded as it is, less ``$schema`` and ``$id``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ates.platform.events.registry import Registry, SchemaVersion

ASYNCAPI_VERSION = "3.0.0"

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Every event travels in this envelope (JSON). Money is integer cents everywhere."
    ),
    "required": ["event_id", "event_name", "event_version", "event_time", "producer", "data"],
    "properties": {
        "event_id": {
            "type": "string",
            "format": "uuid",
            "description": "Unique; the broker's dedup id and the consumers' inbox key.",
        },
        "event_name": {"type": "string", "description": "Which event (the channel's)."},
        "event_version": {
            "type": "integer",
            "minimum": 1,
            "description": "The version of its schema the data follows.",
        },
        "event_time": {
            "type": "string",
            "format": "date-time",
            "description": "When it happened at the producer (RFC 3339, UTC).",
        },
        "producer": {"type": "string", "description": "The service that emitted it."},
        "trace": {
            "type": "string",
            "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
            "description": (
                "W3C traceparent of the work that caused the event (optional): the "
                "request's, or the consumed event's that its handler emitted it for."
            ),
        },
        "data": {"type": "object", "description": "The event itself (its message's schema)."},
    },
}

SERVERS: dict[str, Any] = {
    "nats": {
        "host": "127.0.0.1:4222",
        "protocol": "nats",
        "description": (
            "NATS JetStream: one stream per domain (TASKS holds tasks.>); the channel "
            "address is the subject. `ates up` bundles a server (its port varies)."
        ),
    },
    "rabbitmq": {
        "host": "rabbitmq:5672",
        "pathname": "/ates",
        "protocol": "amqp",
        "protocolVersion": "0-9-1",
        "description": (
            "RabbitMQ: a topic exchange per domain (ates.tasks); the channel address is "
            "the routing key."
        ),
    },
    "kafka": {
        "host": "kafka:9092",
        "protocol": "kafka",
        "description": (
            "Apache Kafka: a topic per domain (ates.tasks), keyed by aggregate; the "
            "event name is in the event_name header."
        ),
    },
}


def message_key(item: SchemaVersion) -> str:
    return f"{item.name}.v{item.version}"


def channel_key(item: SchemaVersion) -> str:
    return f"{item.domain}.{item.name}"


def build_document(
    registry: Registry,
    *,
    producers: Mapping[str, str],
    consumers: Mapping[str, Sequence[str]],
    version: str,
) -> dict[str, Any]:
    """The AsyncAPI document. ``producers``: domain -> the service producing its events;
    ``consumers``: event name -> the services consuming it."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name in registry.names():
        versions = registry.versions_of(name)
        latest = versions[-1]
        channel = channel_key(latest)
        producer = producers.get(latest.domain)
        takers = sorted(consumers.get(name, ()))
        for item in versions:
            messages[message_key(item)] = _message(item)
        channels[channel] = {
            "address": channel,
            "title": name,
            "summary": latest.schema.get("description", name),
            "description": _who(latest.domain, producer, takers, versions),
            "messages": {
                message_key(item): {"$ref": f"#/components/messages/{message_key(item)}"}
                for item in versions
            },
            "tags": [{"name": latest.domain}],
        }
        ref = {"$ref": f"#/channels/{channel}"}
        if producer is not None:
            operations[f"{producer}.sends.{name}"] = {
                "action": "send",
                "channel": ref,
                "title": f"{producer} sends {name}",
                "summary": f"{producer} publishes {name} v{latest.version} through its outbox.",
                "messages": [{"$ref": f"#/channels/{channel}/messages/{message_key(latest)}"}],
                "tags": [{"name": f"service:{producer}"}],
            }
        for service in takers:
            operations[f"{service}.receives.{name}"] = {
                "action": "receive",
                "channel": ref,
                "title": f"{service} receives {name}",
                "summary": (
                    f"{service} applies {name} exactly once (inbox); every version is "
                    "accepted and upcast to the newest."
                ),
                "messages": [
                    {"$ref": f"#/channels/{channel}/messages/{message_key(item)}"}
                    for item in versions
                ],
                "tags": [{"name": f"service:{service}"}],
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "aTES events",
            "version": version,
            "description": (
                "The events the aTES services exchange, generated from the schema "
                "registry (`ates schemas docs`). Every event is a JSON envelope "
                "(`Envelope`) whose `data` follows the schema of its name and version. "
                "Producers write events to a transactional outbox; consumers apply each "
                "once through an inbox and accept every version still in use."
            ),
            "tags": [{"name": domain} for domain in registry.domains()],
        },
        "defaultContentType": "application/json",
        "servers": SERVERS,
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {"Envelope": ENVELOPE_SCHEMA},
            "messages": messages,
        },
    }


def _message(item: SchemaVersion) -> dict[str, Any]:
    data = {k: v for k, v in copy.deepcopy(item.schema).items() if k not in ("$schema", "$id")}
    data.pop("examples", None)
    examples = item.schema.get("examples") or [{}]
    return {
        "name": item.name,
        "title": f"{item.name} v{item.version}",
        "summary": item.schema.get("description", ""),
        "contentType": "application/json",
        "payload": {
            "allOf": [
                {"$ref": "#/components/schemas/Envelope"},
                {
                    "type": "object",
                    "properties": {
                        "event_name": {"const": item.name},
                        "event_version": {"const": item.version},
                        "data": data,
                    },
                },
            ]
        },
        "examples": [
            {
                "name": f"{item.name}-v{item.version}",
                "payload": {
                    "event_id": "3f0b8a52-6c8e-4c52-9a0e-0c3f3b1f6f10",
                    "event_name": item.name,
                    "event_version": item.version,
                    "event_time": "2026-11-25T10:15:00Z",
                    "producer": "example",
                    "trace": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    "data": examples[0],
                },
            }
        ],
        "tags": [{"name": item.domain}],
    }


def _who(
    domain: str, producer: str | None, consumers: Sequence[str], versions: Sequence[SchemaVersion]
) -> str:
    made = f"produced by **{producer}**" if producer else "produced by no service"
    taken = ", ".join(f"**{c}**" for c in consumers) or "no service"
    numbers = ", ".join(f"v{v.version}" for v in versions)
    return f"Domain `{domain}`; {made}; consumed by {taken}. Versions: {numbers}."
