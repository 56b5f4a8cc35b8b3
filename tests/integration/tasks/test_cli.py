"""``ates tasks shuffle`` on the tasks database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ates.clitools import service_runtime
from ates.services.tasks.cli import register
from ates.services.tasks.commands import CreateTask, create_task
from tests.integration.tasks.helpers import hire, outbox_events
from tests.support import make_settings

pytestmark = pytest.mark.integration


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        pass

    return app


def test_shuffle_from_the_command_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", None)
    runner = CliRunner()

    refused = runner.invoke(_cli(), ["tasks", "shuffle", "--data-dir", str(settings.data_dir)])
    assert refused.exit_code == 1
    assert "no active worker" in refused.output

    async def prepare() -> None:
        async with service_runtime("tasks", settings) as runtime:
            await hire(runtime)
            for i in range(3):
                async with runtime.uow() as uow:
                    await create_task(uow, CreateTask(title=f"Task {i}"))

    asyncio.run(prepare())
    result = runner.invoke(_cli(), ["tasks", "shuffle", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert "3 open tasks reassigned" in result.output

    async def shuffled() -> int:
        async with service_runtime("tasks", settings) as runtime:
            events = await outbox_events(runtime.db, "TaskAssigned")
        return sum(e["data"]["reason"] == "shuffle" for e in events)

    assert asyncio.run(shuffled()) == 3
