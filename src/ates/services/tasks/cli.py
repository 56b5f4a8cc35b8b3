"""``ates tasks shuffle``: the Shuffle button from the command line.

It works on the tasks database whether or not the service runs; the ``TaskAssigned``
events wait in the outbox until a tasks process publishes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ates.clitools import DataDirOption, console, fail, load_settings, with_runtime

if TYPE_CHECKING:
    from ates.platform.runtime import Runtime
    from ates.services.tasks.shuffle import ShuffleResult

tasks_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True, help="The task tracker.")


@tasks_app.command("shuffle")
def shuffle(data_dir: DataDirOption = None) -> None:
    """Give every open task to a random active worker, as the Shuffle button does."""
    from ates.services.tasks.domain import NoActiveWorker
    from ates.services.tasks.shuffle import shuffle_tasks

    settings = load_settings(data_dir)

    async def _shuffle(runtime: Runtime) -> ShuffleResult:
        return await shuffle_tasks(runtime.uow)

    try:
        result = with_runtime("tasks", settings, _shuffle)
    except NoActiveWorker as error:
        fail(str(error), code=1)
    console.print(f"shuffle {result.shuffle_id}: {result.reassigned} open tasks reassigned")


def register(app: typer.Typer) -> None:
    """Mount this service's commands on the main `ates` app."""
    app.add_typer(tasks_app, name="tasks")
