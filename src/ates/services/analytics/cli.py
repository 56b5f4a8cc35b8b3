"""The analytics service's words of the `ates` command: ``ates replay SERVICE``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from ates.clitools import DataDirOption, console, fail, run, service_runtime, stack_settings
from ates.servicenames import SERVICES

if TYPE_CHECKING:
    from ates.config import Settings


def register(app: typer.Typer) -> None:
    """Mount this service's commands on the main `ates` app."""
    app.command("replay")(replay_command)


def replay_command(
    service: Annotated[str, typer.Argument(help="The read model to rebuild (analytics).")],
    data_dir: DataDirOption = None,
) -> None:
    """Rebuild a read model from the broker's retained event log (docs/replay.md). It drops
    the projections and reads every event again from the start of the log; a running
    service pauses meanwhile and then carries on. Safe to run again."""
    from ates.platform.replay import is_replayable
    from ates.services.registry import spec

    if service not in SERVICES:
        fail(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
    if not is_replayable(spec(service)):
        fail(
            f"{service} keeps state of its own and cannot be rebuilt from events; "
            "only a read model can be replayed: analytics"
        )
    settings = stack_settings(data_dir)  # the broker of a running `ates up`, if any
    run(_replay(service, settings))


async def _replay(service: str, settings: Settings) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from ates.platform.broker import BrokerUnavailable, create_broker
    from ates.platform.replay import ReplaySuperseded, replay

    async with _broker_url(settings) as url:
        broker = create_broker(
            url, max_age_days=settings.stream_max_age_days, max_bytes=settings.stream_max_bytes
        )
        try:
            await broker.connect()
            await broker.ensure_streams(_domains())
        except BrokerUnavailable as error:
            fail(f"cannot reach the broker at {url}: {error}", code=1)
        try:
            async with service_runtime(service, settings) as runtime:
                with Progress(
                    "[progress.description]{task.description}",
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=console.real,
                ) as bar:
                    task = bar.add_task(f"replaying {service} from {url}", total=None)

                    def progress(done: int, total: int) -> None:
                        bar.update(task, completed=done, total=max(done, total))

                    report = await replay(runtime, broker, progress=progress)
        except ReplaySuperseded as error:
            fail(str(error), code=1)
        finally:
            await broker.close()
    console.print(
        f"{service} rebuilt as generation {report.generation}: {report.events} events "
        f"(the log held {report.log_size}) in {report.seconds:.1f} s"
    )


def _domains() -> list[str]:
    from ates.platform.events import default_registry

    return default_registry().domains()


@asynccontextmanager
async def _broker_url(settings: Settings) -> AsyncIterator[str]:
    """``ATES_BROKER_URL``; else the bundled NATS of ``ates up`` if it is running; else
    that server started on its data for the time of the replay."""
    from ates.platform.broker.nats.server import EmbeddedNats, EmbeddedNatsError
    from ates.platform.tcp import port_is_free

    if settings.broker_url:
        yield settings.broker_url
        return
    nats_dir = settings.data_dir / "nats"
    if not (nats_dir / "jetstream").exists():
        fail(
            f"no event log under {nats_dir}: set ATES_BROKER_URL, or use the --data-dir "
            "of 'ates up'"
        )
    remembered = nats_dir / "port"
    port = settings.nats_port or (
        int(remembered.read_text().strip()) if remembered.exists() else None
    )
    if port is not None and not port_is_free(port):
        yield f"nats://127.0.0.1:{port}"  # `ates up` is running: use its server
        return
    server = EmbeddedNats(nats_dir, port=settings.nats_port)
    try:
        url = server.start()
    except EmbeddedNatsError as error:
        fail(str(error), code=1)
    try:
        yield url
    finally:
        server.stop()
