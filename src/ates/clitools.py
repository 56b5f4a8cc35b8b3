"""Helpers shared by the command-line modules of every service.

Nothing heavy is imported here at module level: ``ates --help`` (and every command's
help) loads this module, and must not pay for FastAPI, SQLAlchemy, Alembic or pydantic.
Each helper imports what it needs when it runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ates.config import Settings
    from ates.platform.runtime import Runtime

T = TypeVar("T")


class _LazyConsole:
    """A rich ``Console`` made on first use (importing rich costs a twentieth of a
    second that ``--help`` need not pay)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def real(self) -> Console:
        """The console itself, for what needs a ``Console`` (rich's progress bars)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


console: Any = _LazyConsole()
err_console: Any = _LazyConsole(stderr=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where the embedded data lives (ATES_DATA_DIR; ./var by default)."
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with command-line overrides; one clear line if bad."""
    from pydantic import ValidationError

    from ates.config import Settings, describe_error

    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    try:
        return Settings(**values)
    except ValidationError as error:
        fail(describe_error(error))


def stack_settings(data_dir: Path | None = None, port_base: int | None = None) -> Settings:
    """Settings for a command that talks to the running system: what the environment and
    the options say, and where they are silent, the ports, host and broker of the stack
    ``ates up`` runs on this data directory (``ates.stackfile``)."""
    import os

    from ates import stackfile

    settings = load_settings(data_dir, port_base=port_base)
    running = stackfile.find(settings.data_dir)
    if running is None:
        return settings
    found: dict[str, Any] = {}
    if port_base is None and "ATES_PORT_BASE" not in os.environ:
        found["port_base"] = running.port_base
    if "ATES_HOST" not in os.environ:
        found["host"] = running.host
    if settings.broker_url is None:
        found["broker_url"] = running.broker_url
    return load_settings(data_dir, **{"port_base": port_base, **found})


def run(coro: Awaitable[T]) -> T:
    import asyncio

    return asyncio.run(coro)  # type: ignore[arg-type]


@asynccontextmanager
async def service_runtime(
    service: str, settings: Settings, *, migrate: bool = True
) -> AsyncIterator[Runtime]:
    """A runtime with the service's database ready, no broker (commands write to the
    outbox; the running service's relay publishes)."""
    from ates.platform import migrations
    from ates.platform.runtime import build_runtime
    from ates.services.registry import spec

    runtime = build_runtime(spec(service), settings)
    try:
        if migrate:
            await migrations.upgrade(service, runtime.db)
        yield runtime
    finally:
        await runtime.db.dispose()


def with_runtime(service: str, settings: Settings, action: Callable[[Runtime], Awaitable[T]]) -> T:
    async def _main() -> T:
        async with service_runtime(service, settings) as runtime:
            return await action(runtime)

    return run(_main())


def print_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table as plain aligned columns, never cut or wrapped to the terminal's width:
    ids and emails come out whole, and ``cut``/``awk`` can read it."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for line in (header, *rows):
        typer.echo("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


JsonOption = Annotated[bool, typer.Option("--json", help="Print the list as JSON, for scripts.")]


def print_json(value: Any) -> None:
    import json

    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))
