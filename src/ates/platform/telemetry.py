"""Logs (structlog) and metrics (Prometheus) shared by every service."""

from __future__ import annotations

import logging
import sys

import structlog
from prometheus_client import Counter, Gauge, Histogram

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


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
