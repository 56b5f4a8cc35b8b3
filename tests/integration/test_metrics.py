"""``/metrics`` of running services (bundled NATS), scraped and parsed with
``prometheus_client``'s own parser: every series docs/operations.md names is there, with
values that follow what happened."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ates.config import Settings
from ates.platform.broker import OutgoingMessage
from tests.integration.tasks.helpers import hire
from tests.support import Harness, TokenFactory, eventually, publish, service_harness

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(harness: Harness) -> Samples:
    response = await harness.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels``; it must be there."""
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no {name}{labels} among {sorted(n for n, _ in samples)}"
    return samples[key]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` that carry ``labels`` (others may vary)."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert found, f"no {name}{labels}"
    return sum(found)


async def test_every_series_is_exposed_and_follows_the_events(
    settings: Settings, tokens: TokenFactory
) -> None:
    async with (
        service_harness("tasks", settings, tokens) as tasks,
        service_harness("billing", settings, tokens) as billing,
    ):
        # Counters are per process and tests share one: compare with where they stood.
        before_tasks, before_billing = await scrape(tasks), await scrape(billing)
        worker = await hire(tasks.runtime)
        created = await tasks.client.post(
            "/api/tasks", json={"title": "Count the seeds"}, headers=tokens.headers("manager")
        )
        task = created.json()["public_id"]
        done = await tasks.client.post(
            f"/api/tasks/{task}/complete", headers=tokens.headers("worker", worker)
        )
        assert done.status_code == 200
        # A message no consumer can read goes to billing's dead letters.
        await publish(
            settings, OutgoingMessage(str(uuid.uuid4()), "tasks", "TaskCreated", b"not an event")
        )

        def grown(before: Samples, after: Samples, name: str, **labels: str) -> float:
            was = total(before, name, **labels) if _has(before, name, labels) else 0.0
            return total(after, name, **labels) - was

        async def settled() -> Samples | None:
            now = await scrape(billing)
            applied = grown(
                before_billing,
                now,
                "ates_events_consumed_total",
                event="TaskCompleted",
                outcome="applied",
            )
            published = grown(
                before_billing, now, "ates_events_published_total", event="TransactionApplied"
            )
            lag = value(
                now, "ates_consumer_lag", service="billing", group="billing", domain="tasks"
            )
            waiting = value(now, "ates_dead_letters_pending", service="billing")
            # what billing emitted has left its outbox too (the relay runs on its own)
            backlog = value(now, "ates_outbox_backlog", service="billing")
            return now if (applied, published, lag, waiting, backlog) == (1, 2, 0, 1, 0) else None

        after_billing = await eventually(settled)
        after_tasks = await scrape(tasks)

    b, t = after_billing, after_tasks
    # published, by event name
    assert grown(before_tasks, t, "ates_events_published_total", event="TaskCreated") == 1
    assert grown(before_tasks, t, "ates_events_published_total", event="TaskCompleted") == 1
    value(b, "ates_events_published_total", service="billing", event="TaskPriced")
    # consumed by outcome, retried, dead-lettered by reason
    for outcome in ("applied", "duplicate", "retry", "dead_lettered"):
        value(
            b,
            "ates_events_consumed_total",
            service="billing",
            event="TaskAssigned",
            outcome=outcome,
        )
    value(b, "ates_events_retried_total", service="billing", event="TaskAssigned")
    for reason in ("invalid", "rejected", "failed"):
        value(
            b,
            "ates_events_dead_lettered_total",
            service="billing",
            event="TaskCompleted",
            reason=reason,
        )
    assert grown(before_billing, b, "ates_events_dead_lettered_total", event="?") == 1
    # handler latency, batch sizes
    handler = "TaskCreated,TaskAssigned,TaskCompleted"
    assert value(b, "ates_handler_seconds_count", service="billing", handler=handler) >= 1
    assert value(b, "ates_handler_seconds_sum", service="billing", handler=handler) > 0
    assert value(b, "ates_consumer_batch_size_count", service="billing", domain="tasks") >= 1
    assert value(b, "ates_outbox_publish_batch_size_count", service="tasks") >= 1
    # the gauges read at scrape time
    assert value(b, "ates_outbox_backlog", service="billing") == 0
    assert value(b, "ates_outbox_oldest_unsent_age_seconds", service="billing") == 0
    assert value(b, "ates_consumer_lag", service="billing", group="billing", domain="accounts") == 0
    assert value(t, "ates_consumer_lag", service="tasks", group="tasks", domain="accounts") == 0
    assert value(b, "ates_dead_letters_pending", service="billing") == 1
    value(b, "ates_dead_letters_retried_at_start_total", service="billing", outcome="applied")
    # HTTP requests and latency by route template
    http: Callable[..., float] = lambda **labels: grown(  # noqa: E731
        before_tasks, t, "ates_http_request_seconds_count", service="tasks", **labels
    )
    assert http(method="POST", route="/api/tasks", status="201") == 1
    assert http(method="POST", route="/api/tasks/{public_id}/complete", status="200") == 1
    assert total(t, "ates_http_request_seconds_bucket", route="/api/tasks", le="+Inf") >= 1


def _has(samples: Samples, name: str, labels: dict[str, str]) -> bool:
    return any(n == name and set(labels.items()) <= ls for n, ls in samples)


async def test_an_outbox_that_waits_shows_its_backlog_and_age(
    settings: Settings, tokens: TokenFactory
) -> None:
    """No relay (messaging off): the rows wait, the scrape says how many and how old;
    with no broker connection the lag is unknown (NaN), not a stale number."""
    async with service_harness("tasks", settings, tokens, messaging=False) as tasks:
        await hire(tasks.runtime)
        created = await tasks.client.post(
            "/api/tasks", json={"title": "Wait for it"}, headers=tokens.headers("manager")
        )
        assert created.status_code == 201

        async def waiting() -> Samples | None:
            now = await scrape(tasks)
            return (
                now
                if value(now, "ates_outbox_oldest_unsent_age_seconds", service="tasks") > 0
                else None
            )

        samples = await eventually(waiting)
    assert value(samples, "ates_outbox_backlog", service="tasks") == 2  # created, assigned
    lag = value(samples, "ates_consumer_lag", service="tasks", group="tasks", domain="accounts")
    assert math.isnan(lag)
