"""A test that restarts RabbitMQ restarts a node of its own, never the machine's shared
server (whose other users would lose their connections)."""

from __future__ import annotations

import aio_pika
import pytest

from tests.backends import restart_rabbitmq
from tests.rabbitmq_node import RabbitNode

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


async def test_a_restart_in_a_test_leaves_the_shared_server_alone(
    rabbitmq_url: str, rabbitmq_server: str
) -> None:
    assert rabbitmq_url != rabbitmq_server and "127.0.0.1" in rabbitmq_url
    bystander = await aio_pika.connect(rabbitmq_server)  # someone else on the shared server
    own = await aio_pika.connect(rabbitmq_url)
    try:
        await restart_rabbitmq()
        assert not bystander.is_closed, "the shared server was restarted"
        channel = await bystander.channel()
        await channel.close()
        # the test's own node went down, and its connection with it
        with pytest.raises((aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError)):
            await own.channel()
        again = await aio_pika.connect(rabbitmq_url)
        await again.close()
    finally:
        await own.close()
        await bystander.close()


async def test_restart_rabbitmq_refuses_without_a_node_of_the_tests_own() -> None:
    with pytest.raises(RuntimeError, match="never the machine's shared server"):
        await restart_rabbitmq()


def test_the_node_is_gone_after_the_test(own_rabbitmq: RabbitNode) -> None:
    process = own_rabbitmq.process
    assert process is not None and process.poll() is None
    own_rabbitmq.stop()
    assert process.poll() is not None
