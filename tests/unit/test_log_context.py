"""JSON log lines name their service and, where there is one, the trace of the work."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator

import pytest
import structlog
from uvicorn.config import LOGGING_CONFIG

from ates.platform.telemetry import configure_logging
from ates.platform.tracing import TRACEPARENT

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT_VALUE = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    # as after a uvicorn server started with its own logging config (some tests do):
    # its loggers have their own handlers and do not propagate
    logging.config.dictConfig(LOGGING_CONFIG)
    buffer = io.StringIO()
    configure_logging("INFO", json=True, stream=buffer, service="billing")
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _read(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_lines_carry_the_service_and_the_trace_of_the_request(lines: io.StringIO) -> None:
    log = structlog.get_logger("test")
    log.info("outside.any.request")
    token = TRACEPARENT.set(TRACEPARENT_VALUE)
    try:
        log.info("inside.a.request")
        logging.getLogger("uvicorn.error").warning("a library's line")
        log.warning("about.an.event", event_id="e-1", trace_id="0" * 31 + "1")
    finally:
        TRACEPARENT.reset(token)
    outside, inside, library, about = _read(lines)
    assert outside["service"] == "billing" and "trace_id" not in outside
    assert (inside["service"], inside["trace_id"]) == ("billing", TRACE_ID)
    assert (library["service"], library["trace_id"]) == ("billing", TRACE_ID)
    # a line about an event names that event's trace, not the surrounding one
    assert (about["event_id"], about["trace_id"]) == ("e-1", "0" * 31 + "1")


def test_exception_details_stay(lines: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger("test").exception("failed")
    (line,) = _read(lines)
    exception = line["exception"]
    assert isinstance(exception, list) and exception[0]["exc_type"] == "ValueError"
    assert line["service"] == "billing"
