"""The analytics service's words of the `ates` command: ``ates replay SERVICE``, which
rebuilds a read model (the command keeps its public name, docs/rebuild.md)."""

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
    # "replay" is the public name (DESIGN.md); what it does is a rebuild
    app.command("replay")(rebuild_command)


def rebuild_command(
    service: Annotated[str, typer.Argument(help="The read model to rebuild (analytics).")],
    data_dir: DataDirOption = None,
) -> None:
    """Rebuild a read model from the broker's retained event log (docs/rebuild.md). It
    drops the projections and reads every event again from the start of the log; a running
    service pauses meanwhile and then carries on. Safe to run again. (Not for dead letters:
    `ates dlq replay` applies one of those again.)"""
    from ates.platform.rebuild import is_rebuildable
    from ates.services.registry import spec

    if service not in SERVICES:
        fail(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
    if not is_rebuildable(spec(service)):
        fail(
            f"{service} keeps state of its own and cannot be rebuilt from events; "
            "only a read model can be rebuilt: analytics"
        )
    settings = stack_settings(data_dir)  # the broker of a running `ates up`, if any
    run(_rebuild(service, settings))


async def _rebuild(service: str, settings: Settings) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from ates.platform.broker import BrokerUnavailable, create_broker
    from ates.platform.rebuild import RebuildSuperseded, rebuild

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
                    task = bar.add_task(f"rebuilding {service} from {url}", total=None)

                    def progress(done: int, total: int) -> None:
                        bar.update(task, completed=done, total=max(done, total))

                    report = await rebuild(runtime, broker, progress=progress)
        except RebuildSuperseded as error:
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
    that server started on its data for the time of the rebuild."""
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
