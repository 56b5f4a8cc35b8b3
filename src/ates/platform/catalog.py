"""The event catalog every service serves: ``/asyncapi.json`` (AsyncAPI 3) and a page of
it, ``/asyncapi`` (server-rendered, the pages' CSS, no script). Both are public, like the
schemas they describe.

Which service produces and which consume each event comes from the services' specs, so
the document is built the first time it is asked for (that imports every service's
wiring, which a service does not otherwise need), then kept.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from ates.platform.events import default_registry
from ates.platform.events.asyncapi import ENVELOPE_SCHEMA, build_document, channel_key
from ates.platform.pages import SESSION_KEY, principal_from_session
from ates.platform.status import version
from ates.platform.web import render


@cache
def services() -> tuple[dict[str, str], dict[str, list[str]]]:
    """From the services' specs: domain -> the service producing its events, and event
    name -> the services consuming it."""
    from ates.config import SERVICES
    from ates.services.registry import spec

    producers: dict[str, str] = {}
    consumers: dict[str, list[str]] = {}
    for name in SERVICES:
        service = spec(name)
        for domain in service.produces:
            producers[domain] = name
        for event in service.consumes:
            consumers.setdefault(event, []).append(name)
    return producers, consumers


@cache
def document() -> dict[str, Any]:
    """The AsyncAPI document of the registry and the services (``ates schemas docs``)."""
    producers, consumers = services()
    return build_document(
        default_registry(), producers=producers, consumers=consumers, version=version()
    )


def install_catalog(app: FastAPI) -> None:
    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(document))

    @app.get("/asyncapi", include_in_schema=False, response_class=HTMLResponse)
    async def asyncapi_page(request: Request) -> HTMLResponse:
        user = None
        if "session" in request.scope:
            user = principal_from_session(request.session.get(SESSION_KEY))
        doc = await asyncio.to_thread(document)
        return render(
            request,
            "asyncapi.html",
            user=user,
            document=doc,
            envelope=_envelope(),
            domains=_domains(doc),
        )


def _envelope() -> dict[str, Any]:
    required = set(ENVELOPE_SCHEMA["required"])
    return {
        "description": ENVELOPE_SCHEMA["description"],
        "fields": [
            {
                "name": name,
                "type": _type(prop),
                "required": name in required,
                "description": prop.get("description", ""),
            }
            for name, prop in ENVELOPE_SCHEMA["properties"].items()
        ],
    }


def _domains(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """What the page shows, domain by domain."""
    registry = default_registry()
    producers, consumers = services()
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for name in registry.names():
        versions = registry.versions_of(name)
        latest = versions[-1]
        by_domain.setdefault(latest.domain, []).append(
            {
                "name": name,
                "channel": channel_key(latest),
                "summary": latest.schema.get("description", ""),
                "producer": producers.get(latest.domain),
                "consumers": sorted(consumers.get(name, [])),
                "versions": [
                    {
                        "number": item.version,
                        "fields": _fields(item.schema),
                        "example": json.dumps(
                            (item.schema.get("examples") or [{}])[0], indent=2, ensure_ascii=False
                        ),
                    }
                    for item in versions
                ],
            }
        )
    return [{"name": domain, "events": events} for domain, events in sorted(by_domain.items())]


def _fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [
        {"name": name, "type": _type(prop), "required": name in required}
        for name, prop in schema.get("properties", {}).items()
    ]


def _type(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if kind is None and "enum" in prop:
        return "one of " + ", ".join(map(str, prop["enum"]))
    text = " or ".join(kind) if isinstance(kind, list) else str(kind or "any")
    if "enum" in prop:
        text += " (" + ", ".join(map(str, prop["enum"])) + ")"
    if "format" in prop:
        text += f" ({prop['format']})"
    return text
