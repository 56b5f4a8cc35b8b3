from __future__ import annotations

import asyncio

import pytest

from ates.platform.service import supervised


async def test_a_background_job_that_dies_is_started_again() -> None:
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("lost the connection in a way nobody retried")

    await asyncio.wait_for(supervised("flaky", flaky, first_delay=0.01), timeout=5)
    assert len(runs) == 3


async def test_cancelling_stops_the_supervision() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervised("forever", forever))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
