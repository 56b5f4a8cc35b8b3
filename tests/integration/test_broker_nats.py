"""The broker contract on NATS JetStream (the bundled server), plus NATS-only guarantees."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ates.platform.broker import Broker
from ates.platform.broker.nats.server import EmbeddedNats
from ates.testing.events import account_created
from tests.integration.broker_contract import (
    BrokerContract,
    Recorder,
    RestartBroker,
    consuming,
    unique_group,
)
from tests.support import eventually

pytestmark = pytest.mark.integration


class TestNatsBroker(BrokerContract):
    @pytest.fixture
    def broker_url(self, nats_url: str) -> str:
        return nats_url

    @pytest.fixture
    def broker_options(self) -> dict[str, Any]:
        return {"ack_wait_seconds": 3}

    @pytest.fixture
    def restart_broker(self, nats_server: EmbeddedNats) -> RestartBroker:
        async def restart(while_down: Callable[[], Awaitable[None]] | None = None) -> None:
            port = nats_server.port
            await asyncio.to_thread(nats_server.stop)
            if while_down is not None:
                await while_down()
            nats_server.requested_port = port
            await asyncio.to_thread(nats_server.start)

        return restart

    async def test_server_drops_a_duplicate_publish_inside_its_window(self, broker: Broker) -> None:
        recorder = Recorder()
        message, fence = account_created(), account_created()
        async with consuming(broker, unique_group("window"), recorder):
            await broker.publish([message])
            await broker.publish([message])
            await broker.publish([fence])
            await eventually(recorder.has(message, fence))
        assert recorder.ids({message.event_id})[message.event_id] == 1
        assert await broker.log_size("accounts") == 2
