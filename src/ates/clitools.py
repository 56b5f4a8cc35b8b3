"""Helpers shared by the command-line modules of every service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from ates.config import Settings, describe_error
from ates.platform import migrations
from ates.platform.service import Runtime, build_runtime

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where embedded data lives (ATES_DATA_DIR, default ./var)."),
]


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with command-line overrides; one clear line if bad."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    try:
        return Settings(**values)
    except ValidationError as error:
        fail(describe_error(error))


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


@asynccontextmanager
async def service_runtime(
    service: str, settings: Settings, *, migrate: bool = True
) -> AsyncIterator[Runtime]:
    """A runtime with the service's database ready, no broker (commands write to the
    outbox; the running service's relay publishes)."""
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
