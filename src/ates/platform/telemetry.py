"""Logs (structlog) and metrics (Prometheus) shared by every service."""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

import structlog
from prometheus_client import Counter, Gauge, Histogram
from structlog.tracebacks import ExceptionDictTransformer

from ates.platform.redaction import redact

EVENTS_PUBLISHED = Counter(
    "ates_events_published_total", "Events the outbox relay published", ["service"]
)
EVENTS_CONSUMED = Counter(
    "ates_events_consumed_total",
    "Deliveries handled by consumers, by outcome",
    ["service", "event", "outcome"],
)
OUTBOX_BACKLOG = Gauge("ates_outbox_backlog", "Unpublished outbox rows seen last", ["service"])
HTTP_REQUESTS = Histogram(
    "ates_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route", "status"],
)


class _Redacted:
    """The renderer, then :func:`redact` over the whole line (message, fields, traceback)."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, name: str, event_dict: Any) -> str:
        return redact(str(self.renderer(logger, name, event_dict)))


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
    level: str = "INFO", *, json: bool = False, stream: IO[str] | None = None
) -> None:
    """One pipeline for every log line: structlog's events and the standard library's
    records (uvicorn, Authlib, …) get the same fields, the same renderer (JSON in
    production) and the same redaction, on ``stream`` (stderr)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
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
