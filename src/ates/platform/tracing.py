"""Tracing: one trace per business action, from the HTTP request through every consumer.

The W3C trace context (``traceparent``) travels in the envelope's ``trace``: a unit of
work stamps the events it emits with the context it runs under, the broker carries them,
a consumer applies each event under the context it arrived with, and the events a
handler emits carry that event's context on. So one "complete task" is one trace across
tasks, billing, analytics and notifications.

Two modes, chosen per process by ``ATES_OTEL``:

- ``off`` (the default) costs nothing measurable: no span is made and the OpenTelemetry
  SDK is not even imported. An incoming ``traceparent`` header is still honoured — the
  request middleware puts it in :data:`TRACEPARENT`, units of work copy it into the
  events, consumers hand each event's ``trace`` to the events its handler emits — so
  a caller's trace id reaches every event its request caused.
- ``console`` / ``otlp``: the OpenTelemetry SDK with a batching exporter (to stdout, or
  OTLP over HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``), the standard FastAPI (ASGI) and
  SQLAlchemy instrumentations, and spans of our own: a relay's publish of each event, a
  consumed batch, each event's processing (a child of the context the event arrived
  with, linked to its batch) and each handler call. The events a handler emits then
  carry the context of their cause's processing span. The SDK's own settings apply
  (``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_*``, ``OTEL_RESOURCE_ATTRIBUTES``).

Each service process gets a :class:`Tracing` of its own (its tracer provider names the
service), passed to its consumers, relay, engine and app; tests run several services in
one process, each with its own, exporting to one in-memory exporter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.types import ASGIApp

    from ates.platform.broker import Broker, OutgoingMessage
    from ates.platform.events import Event

Mode = Literal["off", "console", "otlp"]


class Traced(Protocol):
    """What a handler's SQL and emits run under (a ``UnitOfWork``): the trace it carries
    (the unit of work imports this module, so it is named by shape, not by class)."""

    trace: str | None


# The traceparent the current request runs under, when tracing is off (the middleware
# sets it from the request's header); with tracing on, the current span says it.
TRACEPARENT: ContextVar[str | None] = ContextVar("ates_traceparent", default=None)

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# Whether any Tracing of this process has the SDK on: only then can a current span exist.
_sdk_on = False
# Paths whose requests make no span (probes and scrapes, many and uninteresting).
UNTRACED_PATHS = "healthz,metrics,static"


def current_traceparent() -> str | None:
    """The traceparent the caller runs under: the current span's when tracing is on,
    else the one the request came with (or None)."""
    if _sdk_on:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            return format_traceparent(context)
    return TRACEPARENT.get()


def format_traceparent(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def valid_traceparent(value: str) -> str | None:
    """``value`` as a W3C traceparent (normalised), or None if it is not a valid one.
    Read on every request that carries one: version 00 directly, others through the
    W3C propagator."""
    match = _TRACEPARENT_00.fullmatch(value)
    if match is not None:
        return value if int(match[1], 16) and int(match[2], 16) else None
    context = trace.get_current_span(_PROPAGATOR.extract({"traceparent": value}))
    span_context = context.get_span_context()
    return format_traceparent(span_context) if span_context.is_valid else None


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32 hex digits of a traceparent's trace id (for logs)."""
    if traceparent and len(traceparent) >= 35:
        return traceparent[3:35]
    return None


def remote_context(traceparent: str | None) -> Context | None:
    """The context an event arrived with, as a parent for spans (None: a new trace).
    Called per consumed event with tracing on: a version-00 traceparent (what aTES
    writes) is read directly, anything else through the W3C propagator."""
    if not traceparent:
        return None
    match = _TRACEPARENT_00.fullmatch(traceparent)
    if match is None:
        context = _PROPAGATOR.extract({"traceparent": traceparent})
        return context if trace.get_current_span(context).get_span_context().is_valid else None
    trace_id, span_id = int(match[1], 16), int(match[2], 16)
    if not trace_id or not span_id:
        return None
    remote = SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(match[3], 16))
    )
    return trace.set_span_in_context(NonRecordingSpan(remote))


class Tracing:
    """The tracing of one service process: off, or an SDK tracer provider of its own."""

    def __init__(self, service: str, provider: TracerProvider | None = None) -> None:
        self.service = service
        self.provider = provider
        self.enabled = provider is not None
        self.tracer: trace.Tracer = (
            provider.get_tracer("ates.platform") if provider is not None else trace.NoOpTracer()
        )

    @classmethod
    def off(cls, service: str = "") -> Tracing:
        return cls(service)

    @classmethod
    def from_mode(cls, service: str, mode: Mode) -> Tracing:
        """``ATES_OTEL``: off, console (spans as JSON on stdout) or otlp (the exporter
        reads ``OTEL_EXPORTER_OTLP_ENDPOINT``, e.g. ``http://jaeger:4318``)."""
        if mode == "off":
            return cls.off(service)
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        exporter: SpanExporter
        if mode == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporter = ConsoleSpanExporter(service_name=service)
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        return cls._with(service, BatchSpanProcessor(exporter))

    @classmethod
    def in_memory(cls, service: str, exporter: SpanExporter) -> Tracing:
        """Spans handed to ``exporter`` as each ends (tests, benchmarks)."""
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        return cls._with(service, SimpleSpanProcessor(exporter))

    @classmethod
    def _with(cls, service: str, processor: Any) -> Tracing:
        global _sdk_on
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        resource = Resource.create({"service.name": service, "service.namespace": "ates"})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(processor)
        _sdk_on = True
        return cls(service, provider)

    # --- the standard instrumentations -------------------------------------------------

    def instrument_app(self, app: ASGIApp) -> None:
        """Server spans for every request (FastAPI's instrumentation): the incoming
        ``traceparent`` is their parent, and units of work opened in the request emit
        events under them."""
        if self.provider is None:
            return
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,  # type: ignore[arg-type]
            tracer_provider=self.provider,
            excluded_urls=UNTRACED_PATHS,
            exclude_spans=["receive", "send"],
        )

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """A span per SQL statement, under whatever span is current. The engine's own
        tracer (not ``SQLAlchemyInstrumentor().instrument()``, which also patches
        ``create_engine`` for the whole process and instruments once per process): each
        service's engine reports under its own service."""
        if self.provider is None:
            return
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeter

        usage = NoOpMeter("ates").create_up_down_counter("db.client.connections.usage")
        tracer = self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
        EngineTracer(tracer, engine.sync_engine, usage)

    def shutdown(self) -> None:
        """Export what is buffered and stop (at the end of the process's lifespan)."""
        if self.provider is not None:
            self.provider.shutdown()

    # --- spans of our own (only called when enabled) ----------------------------------------

    def start_span(
        self,
        name: str,
        *,
        parent: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: dict[str, Any] | None = None,
        links: Sequence[Link] = (),
    ) -> Span:
        """A span that starts now and is not current: end it yourself."""
        return self.tracer.start_span(
            name, context=parent, kind=kind, attributes=attributes, links=links
        )


OFF = Tracing.off()


@contextmanager
def publishing(
    tracing: Tracing,
    broker: Broker,
    messages: Sequence[OutgoingMessage],
    traces: Sequence[str | None],
) -> Iterator[None]:
    """A relay's publish of a batch (tracing on): a span per event in the trace it
    carries, from the publish until the broker confirmed it."""
    system = type(broker).__name__.removesuffix("Broker").lower()
    spans = [
        tracing.start_span(
            f"{message.subject} publish",
            parent=remote_context(traceparent),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": system,
                "messaging.operation.type": "send",
                "messaging.destination.name": message.subject,
                "messaging.message.id": message.event_id,
                "messaging.batch.message_count": len(messages),
            },
        )
        for message, traceparent in zip(messages, traces, strict=True)
    ]
    try:
        yield
    except BaseException as error:
        for span in spans:
            span.set_status(Status(StatusCode.ERROR, repr(error)))
        raise
    finally:
        for span in spans:
            span.end()


class ConsumedBatch:
    """The spans of one consumed batch (tracing on): the batch itself (a trace of its
    own: its SQL, its handler calls) and each event's processing, a child of the context
    the event arrived with and linked to the batch, so each business trace shows where
    its event was applied. Events a handler emits continue their cause's processing span
    (:meth:`causes`)."""

    def __init__(
        self, tracing: Tracing, consumer: str, domain: str, events: Sequence[Event | None]
    ) -> None:
        self.tracing = tracing
        arrived = [e for e in events if e is not None]
        self.batch = tracing.start_span(
            f"{domain} consume",
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.operation.type": "process",
                "messaging.consumer.group.name": consumer,
                "messaging.destination.name": domain,
                "messaging.batch.message_count": len(events),
            },
        )
        link = [Link(self.batch.get_span_context())]
        self.spans: dict[int, Span] = {}
        for event in arrived:
            self.spans[id(event)] = tracing.start_span(
                f"{event.event_name} process",
                parent=remote_context(event.trace),
                kind=SpanKind.CONSUMER,
                links=link,
                attributes={
                    "messaging.consumer.group.name": consumer,
                    "messaging.message.id": str(event.event_id),
                    "ates.event.version": event.event_version,
                },
            )
        self._events = {id(event): event for event in arrived}
        self._token: object | None = None

    def causes(self) -> dict[Any, str]:
        """Event id -> the traceparent the events it causes carry."""
        found: dict[Any, str] = {}
        for key, span in self.spans.items():
            found.setdefault(
                self._events[key].event_id, format_traceparent(span.get_span_context())
            )
        return found

    def enter(self) -> None:
        """Make the batch's span current (its transaction's SQL goes under it)."""
        self._token = otel_context.attach(trace.set_span_in_context(self.batch))

    def exit(
        self, *, statuses: dict[int, str] | None = None, error: BaseException | None = None
    ) -> None:
        """End every span: each event's with what became of it."""
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        for key, span in self.spans.items():
            status = statuses.get(key, "retry") if statuses is not None else "retry"
            span.set_attribute("ates.outcome", status)
            if status in ("retry", "dead_lettered"):
                span.set_status(Status(StatusCode.ERROR, status))
            span.end()
        if error is not None:
            self.batch.record_exception(error)
            self.batch.set_status(Status(StatusCode.ERROR, repr(error)))
        self.batch.end()

    @contextmanager
    def handling(
        self, handler: str, events: Sequence[Event], *, uow: Traced | None = None
    ) -> Iterator[None]:
        """A handler call: for one event, a child of its processing span (the handler's
        SQL and emits join the event's trace: pass the ``uow``); for a run of events, a
        child of the batch linked to each event's processing span."""
        if len(events) == 1 and id(events[0]) in self.spans:
            parent = trace.set_span_in_context(self.spans[id(events[0])])
            links: list[Link] = []
        else:
            parent = None  # the batch's span, current
            links = [
                Link(self.spans[id(e)].get_span_context()) for e in events if id(e) in self.spans
            ]
        span = self.tracing.start_span(
            f"{events[0].event_name} handle" if len(events) == 1 else "handle run",
            parent=parent,
            links=links,
            attributes={"ates.handler": handler, "messaging.batch.message_count": len(events)},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        if uow is not None:
            before, uow.trace = uow.trace, format_traceparent(span.get_span_context())
        try:
            yield
        except BaseException as error:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, repr(error)))
            raise
        finally:
            if uow is not None:
                uow.trace = before
            otel_context.detach(token)
            span.end()
