"""Trace context without I/O: the W3C header read and written, the modes, and which trace
an emitted event continues."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from opentelemetry import trace

from ates.platform.events import Event
from ates.platform.tracing import (
    TRACEPARENT,
    Tracing,
    current_traceparent,
    remote_context,
    trace_id_of,
    valid_traceparent,
)
from ates.platform.uow import UnitOfWork

HEADER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("given", "read"),
    [
        (HEADER, HEADER),
        ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None),  # all-zero trace id
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01", None),
        ("not a traceparent", None),
        ("", None),
        # a later version with more fields: read as far as version 00 goes
        ("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes", HEADER),
    ],
)
def test_a_traceparent_is_read_as_w3c_says(given: str, read: str | None) -> None:
    assert valid_traceparent(given) == read
    context = remote_context(given)
    if read is None:
        assert context is None
    else:
        assert context is not None
        span_context = trace.get_current_span(context).get_span_context()
        assert (span_context.trace_id, span_context.is_remote) == (
            int("4bf92f3577b34da6a3ce929d0e0e4736", 16),
            True,
        )


def test_trace_ids_for_logs() -> None:
    assert trace_id_of(HEADER) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_of(None) is None


def test_off_is_off_and_the_request_context_still_travels() -> None:
    tracing = Tracing.from_mode("billing", "off")
    assert (tracing.enabled, tracing.provider) == (False, None)
    assert current_traceparent() is None
    token = TRACEPARENT.set(HEADER)
    try:
        assert current_traceparent() == HEADER
    finally:
        TRACEPARENT.reset(token)


@pytest.mark.parametrize("mode", ["console", "otlp"])
def test_the_exporting_modes_name_the_service(mode: Any) -> None:
    tracing = Tracing.from_mode("billing", mode)
    try:
        assert tracing.enabled and tracing.provider is not None
        assert tracing.provider.resource.attributes["service.name"] == "billing"
    finally:
        tracing.shutdown()


def _event(trace_header: str | None) -> Event:
    return Event("TaskCompleted", 1, {}, "tasks", trace=trace_header)


def test_an_emitted_event_continues_the_trace_of_its_cause() -> None:
    uow = UnitOfWork(db=None, producer="billing")  # type: ignore[arg-type]
    cause = _event(HEADER)
    assert uow.trace_of(cause) == HEADER  # tracing off: the cause's own trace
    processing = f"00-4bf92f3577b34da6a3ce929d0e0e4736-{uuid.uuid4().hex[:16]}-01"
    uow.causes = {cause.event_id: processing}  # tracing on: its processing span
    assert uow.trace_of(cause) == processing
    assert uow.trace_of(_event(None)) is None
