"""Projecting a batch at once leaves exactly the projections of applying its events one by
one (``analytics.projector`` against the consumer's one-by-one path), whatever the order
and however often the events arrive."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ates.platform.broker import Ack, Delivery, subject_for
from ates.platform.consumer import EventConsumer
from ates.platform.events import Event, default_registry
from ates.platform.tracing import ConsumedBatch
from ates.platform.uow import UnitOfWork
from ates.services.analytics.consumers import HANDLERS
from ates.testing.workload import simulate
from tests.integration.analytics.projections import migrated, projections

pytestmark = pytest.mark.integration


class Together(EventConsumer):
    """The consumer, counting the events of batches it had to apply one by one."""

    fell_back = 0

    async def _apply_one_by_one(
        self, uow: UnitOfWork, items: Sequence[Any], spans: ConsumedBatch | None
    ) -> None:
        if len(items) > 1:
            self.fell_back += len(items)
        await super()._apply_one_by_one(uow, items, spans)


def delivery(event: Event) -> Delivery:
    subject = subject_for(default_registry().domain_of(event.event_name), event.event_name)
    return Delivery(body=event.to_json().encode(), subject=subject, attempt=1)


@pytest.mark.parametrize("seed", [4, 5])
async def test_a_batch_projects_what_one_by_one_projects(tmp_path: Path, seed: int) -> None:
    w = simulate(ZoneInfo("Europe/Berlin"), date(2024, 3, 28), date(2024, 4, 2), seed=seed)
    rng = random.Random(seed)
    events = list(w.events)
    for _ in range(len(events) // 10):  # some arrive early, some twice
        i, j = rng.randrange(len(events)), rng.randrange(len(events))
        events[i], events[j] = events[j], events[i]
    events += rng.sample(events, len(events) // 10)
    registry = default_registry()
    async with (
        migrated(f"sqlite:///{tmp_path / 'one.db'}") as one_db,
        migrated(f"sqlite:///{tmp_path / 'many.db'}") as many_db,
    ):
        one = EventConsumer("analytics", one_db, HANDLERS, registry)
        many = Together("analytics", many_db, HANDLERS, registry)
        for event in events:
            assert await one.deliver_one(delivery(event)) == Ack()
        for start in range(0, len(events), 40):
            assert set(await many([delivery(e) for e in events[start : start + 40]])) == {Ack()}
        assert many.fell_back == 0, "the batches were projected together, not one by one"
        assert await projections(many_db) == await projections(one_db)
