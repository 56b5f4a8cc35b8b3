"""One trace per business action: from the HTTP request through the outbox, the broker
(bundled NATS) and every consumer, into the events their handlers emit.

Four services run in this process, each with tracing of its own (its tracer provider
names the service), all exporting to one in-memory exporter. The client sends a W3C
``traceparent`` of its own, as a browser's or a gateway's span would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ates.config import Settings
from ates.platform.tracing import Tracing
from tests.integration.tasks.helpers import hire, outbox_events
from tests.support import Harness, TokenFactory, eventually, service_harness

pytestmark = pytest.mark.integration

SERVICES = ("tasks", "billing", "analytics", "notifications")


def traceparent() -> tuple[str, str]:
    """A caller's traceparent and its trace id."""
    trace_id = uuid.uuid4().hex
    return f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01", trace_id


@asynccontextmanager
async def four_services(
    settings: Settings, tokens: TokenFactory, exporter: InMemorySpanExporter | None
) -> AsyncIterator[dict[str, Harness]]:
    async with AsyncExitStack() as stack:
        harnesses = {}
        for name in SERVICES:
            tracing = Tracing.in_memory(name, exporter) if exporter is not None else None
            harnesses[name] = await stack.enter_async_context(
                service_harness(name, settings, tokens, tracing=tracing)
            )
        yield harnesses


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


def in_trace(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    wanted = int(trace_id, 16)
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == wanted]


def one(spans: Sequence[ReadableSpan], service: str, name: str) -> ReadableSpan:
    found = [s for s in spans if service_of(s) == service and s.name == name]
    assert len(found) == 1, (service, name, sorted({(service_of(s), s.name) for s in spans}))
    return found[0]


async def test_completing_a_task_is_one_trace_across_the_services(
    settings: Settings, tokens: TokenFactory
) -> None:
    exporter = InMemorySpanExporter()
    header, trace_id = traceparent()
    async with four_services(settings, tokens, exporter) as services:
        tasks = services["tasks"]
        worker = await hire(tasks.runtime)
        created = await tasks.client.post(
            "/api/tasks",
            json={"title": "Sharpen the beak"},
            headers={**tokens.headers("manager"), "traceparent": header},
        )
        assert created.status_code == 201
        task = created.json()["public_id"]
        done = await tasks.client.post(
            f"/api/tasks/{task}/complete",
            headers={**tokens.headers("worker", worker), "traceparent": header},
        )
        assert done.status_code == 200

        # The reward reaches analytics as billing's TransactionApplied, in the same trace.
        def reward_projected() -> ReadableSpan | None:
            spans = in_trace(exporter, trace_id)
            rewards = [
                s
                for s in spans
                if service_of(s) == "analytics" and s.name == "TransactionApplied process"
            ]
            return rewards[-1] if len(rewards) == 2 else None  # the fee's, then the reward's

        async def projected() -> ReadableSpan | None:
            return reward_projected()

        await eventually(projected)

        async def notified() -> bool:
            return any(
                service_of(s) == "notifications" and s.name == "TaskAssigned process"
                for s in in_trace(exporter, trace_id)
            )

        await eventually(notified)
        spans = in_trace(exporter, trace_id)
        assert {service_of(s) for s in spans} == set(SERVICES)

        # Completion: the request's span -> billing applies TaskCompleted -> analytics
        # applies the TransactionApplied billing emitted for it: parent to child.
        request = one(spans, "tasks", "POST /api/tasks/{public_id}/complete")
        publish = one(spans, "tasks", "tasks.TaskCompleted publish")
        booked = one(spans, "billing", "TaskCompleted process")
        projected_completion = one(spans, "analytics", "TaskCompleted process")
        assert publish.parent is not None and publish.parent.span_id == request.context.span_id
        assert booked.parent is not None and booked.parent.span_id == request.context.span_id
        assert projected_completion.parent is not None
        assert projected_completion.parent.span_id == request.context.span_id
        reward = [
            s
            for s in spans
            if service_of(s) == "analytics" and s.name == "TransactionApplied process"
        ]
        assert booked.context.span_id in {s.parent.span_id for s in reward if s.parent}
        assert booked.attributes is not None and booked.attributes["ates.outcome"] == "applied"
        # The SQL of the request is in the trace too (the standard instrumentation).
        assert [
            s.name.split(" ")[0]
            for s in spans
            if service_of(s) == "tasks" and s.parent and s.parent.span_id == request.context.span_id
        ].count("UPDATE") == 1
        # Each consumed batch is a span of its own, linked from each event it applied.
        assert booked.links and all(
            link.context.trace_id != int(trace_id, 16) for link in booked.links
        )

        # The events billing emitted carry the trace on.
        emitted = await outbox_events(services["billing"].db, "TransactionApplied")
        assert {e["trace"][3:35] for e in emitted} == {trace_id}


async def test_an_incoming_traceparent_reaches_every_event_with_tracing_off(
    settings: Settings, tokens: TokenFactory
) -> None:
    """No SDK, no exporter: the caller's trace id is still the trace of the events its
    request caused, and of the events the consumers' handlers emitted for them."""
    header, trace_id = traceparent()
    async with four_services(settings, tokens, None) as services:
        tasks, billing = services["tasks"], services["billing"]
        assert not tasks.runtime.tracing.enabled
        worker = await hire(tasks.runtime)
        created = await tasks.client.post(
            "/api/tasks",
            json={"title": "Polish the perch"},
            headers={**tokens.headers("manager"), "traceparent": header},
        )
        task = created.json()["public_id"]
        await tasks.client.post(
            f"/api/tasks/{task}/complete",
            headers={**tokens.headers("worker", worker), "traceparent": header},
        )
        untraced = await tasks.client.post(
            "/api/tasks", json={"title": "Nobody asked"}, headers=tokens.headers("manager")
        )
        assert untraced.status_code == 201

        produced = await outbox_events(tasks.db)
        by_task: dict[str, list[dict[str, Any]]] = {}
        for envelope in produced:
            data = envelope["data"]
            by_task.setdefault(data.get("public_id") or data["task_public_id"], []).append(envelope)
        assert [e["trace"] for e in by_task[task]] == [header] * 3  # created, assigned, done
        assert [e.get("trace") for e in by_task[untraced.json()["public_id"]]] == [None, None]

        async def billed() -> list[dict[str, Any]]:
            found = [
                e
                for e in await outbox_events(billing.db)
                if e["data"].get("task_public_id") == task
            ]
            return found if len(found) == 3 else []  # price, fee, reward

        emitted = await eventually(billed)
        assert sorted(e["event_name"] for e in emitted) == [
            "TaskPriced",
            "TransactionApplied",
            "TransactionApplied",
        ]
        assert {e["trace"][3:35] for e in emitted} == {trace_id}
