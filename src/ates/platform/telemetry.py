"""Logs (structlog) and metrics (Prometheus) shared by every service."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import IO, Any

import structlog
from prometheus_client import Counter, Gauge, Histogram
from structlog.tracebacks import ExceptionDictTransformer

from ates.platform.redaction import redact

# Every series carries the service (tests run several services in one process). Names and
# meanings: docs/operations.md#metrics. The hot paths cache their labelled children
# (``labels()`` takes a lock and builds a key) and count once per batch, not per event.
EVENTS_PUBLISHED = Counter(
    "ates_events_published_total",
    "Events the outbox relay published (the broker confirmed them)",
    ["service", "event"],
)
EVENTS_CONSUMED = Counter(
    "ates_events_consumed_total",
    "Deliveries handled by consumers, by outcome: applied, duplicate, retry, dead_lettered",
    ["service", "event", "outcome"],
)
EVENTS_RETRIED = Counter(
    "ates_events_retried_total",
    "Deliveries whose handler failed and that the broker will deliver again after a delay",
    ["service", "event"],
)
EVENTS_DEAD_LETTERED = Counter(
    "ates_events_dead_lettered_total",
    "Messages moved to the dead-letter store, by reason: invalid, rejected, failed",
    ["service", "event", "reason"],
)
HANDLER_SECONDS = Histogram(
    "ates_handler_seconds",
    "Time in one handler call (a set-based handler: one call for a run of events)",
    ["service", "handler"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
CONSUMER_BATCH_SIZE = Histogram(
    "ates_consumer_batch_size",
    "Deliveries a consumer applied in one transaction",
    ["service", "domain"],
    buckets=BATCH_SIZES,
)
PUBLISH_BATCH_SIZE = Histogram(
    "ates_outbox_publish_batch_size",
    "Outbox rows the relay published in one round",
    ["service"],
    buckets=BATCH_SIZES,
)
OUTBOX_BACKLOG = Gauge(
    "ates_outbox_backlog", "Outbox rows not yet published (read at scrape time)", ["service"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "ates_outbox_oldest_unsent_age_seconds",
    "Age of the oldest outbox row not yet published, 0 when none waits (read at scrape time)",
    ["service"],
)
CONSUMER_LAG = Gauge(
    "ates_consumer_lag",
    "Events of a domain the broker holds for a consumer group that the group has not yet "
    "acknowledged (read from the broker at scrape time; NaN when it cannot be read)",
    ["service", "group", "domain"],
)
DEAD_LETTERS_PENDING = Gauge(
    "ates_dead_letters_pending",
    "Dead letters waiting for a decision (read at scrape time)",
    ["service"],
)
DEAD_LETTERS_RETRIED_AT_START = Counter(
    "ates_dead_letters_retried_at_start_total",
    "Dead letters retried automatically when the service started, by outcome: applied, "
    "duplicate, failed, rejected",
    ["service", "outcome"],
)
HTTP_REQUESTS = Histogram(
    "ates_http_request_seconds",
    "HTTP requests and their latency, by method, route template and status "
    "(its _count is the number of requests)",
    ["service", "method", "route", "status"],
)


class _Redacted:
    """The renderer, then :func:`redact` over the whole line (message, fields, traceback)."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, name: str, event_dict: Any) -> str:
        return redact(str(self.renderer(logger, name, event_dict)))


class _Context:
    """Adds ``service`` (of a process that runs one) and the ``trace_id`` of the work a
    line is about: the current request's or span's, unless the line names one itself."""

    def __init__(self, service: str | None) -> None:
        self.service = service

    def __call__(
        self, logger: Any, name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if self.service and "service" not in event_dict:
            event_dict["service"] = self.service
        # Only a service process loads tracing; a command's log line has no trace.
        tracing = sys.modules.get("ates.platform.tracing")
        if tracing is not None and "trace_id" not in event_dict:
            trace_id = tracing.trace_id_of(tracing.current_traceparent())
            if trace_id:
                event_dict["trace_id"] = trace_id
        return event_dict


def _renderer(json: bool) -> list[Any]:
    if json:
        # The exception as data: type, message and frames. Never the frames' local
        # variables: they hold settings, tokens and passwords.
        return [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            _Redacted(structlog.processors.JSONRenderer()),
        ]
    tracebacks = structlog.dev.RichTracebackFormatter(color_system=None, show_locals=False)
    return [_Redacted(structlog.dev.ConsoleRenderer(colors=False, exception_formatter=tracebacks))]


def configure_logging(
    level: str = "INFO",
    *,
    json: bool = False,
    stream: IO[str] | None = None,
    service: str | None = None,
) -> None:
    """One pipeline for every log line: structlog's events and the standard library's
    records (uvicorn, Authlib, …) get the same fields, the same renderer (JSON in
    production) and the same redaction, on ``stream`` (stderr). A service process names
    itself (``service``) on every line; lines about a request or an event carry its
    ``trace_id`` (and the consumer's its ``event_id``)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _Context(service),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("ates")
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_renderer(json),
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "ates"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own logging config, where something applied it, gives its loggers their
    # own handlers and stops them at "uvicorn": their lines would bypass this pipeline
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
