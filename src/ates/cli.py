"""The ``ates`` command (DESIGN.md §4). Service-specific words live in each service's
``cli.py`` and are mounted here.

Every module the command loads to print its help imports only typer and the standard
library; each command imports what it needs when it runs (``ates --help`` in well under
0.3 s; tests/unit/test_cli_start.py holds it to that)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated

import typer

from ates.clitools import (
    DataDirOption,
    JsonOption,
    console,
    fail,
    load_settings,
    print_json,
    run,
    service_runtime,
    stack_settings,
)
from ates.servicenames import SERVICES

# Help is click's plain text (rich_markup_mode=None): sentences wrapped to the terminal,
# and no rich to import before the first line is printed.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold passwords
    help="aTES: tasks with payroll.",
    rich_markup_mode=None,
)
schemas_app = typer.Typer(
    no_args_is_help=True, help="The event schema registry.", rich_markup_mode=None
)
dlq_app = typer.Typer(
    no_args_is_help=True, help="Dead letters of a service.", rich_markup_mode=None
)
app.add_typer(schemas_app, name="schemas")
app.add_typer(dlq_app, name="dlq")

ServiceArg = Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}.")]


def _check_service(name: str) -> str:
    if name not in SERVICES:
        fail(f"unknown service {name!r}: one of {', '.join(SERVICES)}")
    return name


@app.command()
def up(
    data_dir: DataDirOption = None,
    port_base: Annotated[
        int | None,
        typer.Option(help="Auth listens on N, tasks on N+1 and so on (ATES_PORT_BASE; 8000)."),
    ] = None,
) -> None:
    """Start the whole system on this machine (bundled NATS, SQLite files)."""
    from ates.platform.broker.nats.server import EmbeddedNatsError
    from ates.platform.telemetry import configure_logging
    from ates.stack import StackError, run_stack

    configure_logging("WARNING")
    settings = load_settings(data_dir, port_base=port_base)
    try:
        raise typer.Exit(run_stack(settings, echo=console.print))
    except (StackError, EmbeddedNatsError) as error:
        fail(str(error), code=1)


@app.command()
def serve(
    service: ServiceArg,
    data_dir: DataDirOption = None,
    migrate: Annotated[bool, typer.Option(help="Apply migrations before starting.")] = True,
) -> None:
    """Run one service against the broker and database named by the environment."""
    import uvicorn

    from ates.platform.service import create_app
    from ates.platform.telemetry import configure_logging
    from ates.services.registry import spec

    _check_service(service)
    settings = load_settings(data_dir)
    if settings.broker_url is None:
        fail("ATES_BROKER_URL is not set: 'ates serve' needs a broker ('ates up' starts one)")
    configure_logging(
        settings.log_level, json=settings.environment == "production", service=service
    )
    if migrate:
        from ates.platform import migrations

        async def _migrate() -> None:
            async with service_runtime(service, settings, migrate=False) as runtime:
                await migrations.upgrade(service, runtime.db)

        run(_migrate())
    application = create_app(spec(service), settings)
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port(service),
        log_level="warning",
        # uvicorn's records go to the root logger: one format (JSON in production) and
        # the same redaction as every other line (ates.platform.telemetry)
        log_config=None,
        lifespan="on",
        proxy_headers=True,
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the caught signal again
    # under the handler it found. With the default handler the process would die of the
    # signal (exit 143) after a clean stop; a no-op handler lets it exit 0.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    uvicorn.Server(config).run()


@app.command()
def migrate(
    service: Annotated[str | None, typer.Argument(help="A service; all if omitted.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Apply database migrations."""
    from ates.platform import migrations

    settings = load_settings(data_dir)
    targets = [_check_service(service)] if service else list(SERVICES)

    async def _main() -> None:
        for name in targets:
            async with service_runtime(name, settings, migrate=False) as runtime:
                await migrations.upgrade(name, runtime.db)
                console.print(f"{name}: at {await migrations.current(name, runtime.db)}")

    run(_main())


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def bench(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="A benchmark in bench/; list if omitted.")
    ] = None,
    root: Annotated[Path, typer.Option(help="The aTES checkout holding bench/.")] = Path("."),
) -> None:
    """Run a benchmark kept in the repository's bench/ folder (extra options pass through).

    Figures and how they were measured: docs/benchmarks.md."""
    import subprocess
    import sys

    folder = root / "bench"
    scripts = sorted(
        p.stem
        for p in folder.glob("*.py")
        if not p.stem.startswith("_") and not p.stem.endswith("_server")
    )
    if not scripts:
        fail(f"no benchmarks in {folder.resolve()}: run from an aTES checkout or pass --root")
    if name is None:
        for script in scripts:
            console.print(script)
        return
    if name not in scripts:
        fail(f"unknown benchmark {name!r}: one of {', '.join(scripts)}")
    result = subprocess.run([sys.executable, str(folder / f"{name}.py"), *ctx.args])
    raise typer.Exit(result.returncode)


# --- schemas ----------------------------------------------------------------------------

LOCK_FILE = "registry.lock"


def _lock_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("ates.schemas") / LOCK_FILE))


@schemas_app.command("check")
def schemas_check() -> None:
    """Check every schema and the compatibility rule between versions."""
    from ates.platform.events import default_registry
    from ates.platform.events.compat import check

    path = _lock_path()
    lock = json.loads(path.read_text()) if path.exists() else {}
    problems = check(default_registry(), lock)
    for problem in problems:
        console.print(f"[red]✗[/] {problem}", highlight=False)
    if problems:
        raise typer.Exit(1)
    count = sum(1 for _ in default_registry())
    console.print(f"registry ok: {count} schema versions, all compatible")


@schemas_app.command("lock")
def schemas_lock() -> None:
    """Record the fingerprints of the released schemas (run when releasing a version)."""
    from ates.platform.events import default_registry
    from ates.platform.events.compat import lock_entries

    path = _lock_path()
    path.write_text(json.dumps(lock_entries(default_registry()), indent=2, sort_keys=True) + "\n")
    console.print(f"wrote {path}")


@schemas_app.command("docs")
def schemas_docs(
    output: Annotated[Path, typer.Option(help="Where to write the catalog.")] = Path(
        "docs/events.md"
    ),
    asyncapi: Annotated[
        Path, typer.Option(help="Where to write the AsyncAPI 3 document of the catalog.")
    ] = Path("docs/asyncapi.json"),
) -> None:
    """Write the event catalog (Markdown) and its AsyncAPI 3 document from the registry
    and the services (who produces and who consumes each event)."""
    from ates.platform.catalog import document
    from ates.platform.events import default_registry
    from ates.platform.events.docs import render_catalog

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_catalog(default_registry()))
    console.print(f"wrote {output}")
    asyncapi.parent.mkdir(parents=True, exist_ok=True)
    asyncapi.write_text(json.dumps(document(), indent=2, ensure_ascii=False) + "\n")
    console.print(f"wrote {asyncapi}")


# --- dead letters -----------------------------------------------------------------------


@dlq_app.command("list")
def dlq_list(
    service: Annotated[
        str | None, typer.Argument(help=f"One of: {', '.join(SERVICES)}; all if omitted.")
    ] = None,
    data_dir: DataDirOption = None,
    status: Annotated[str, typer.Option(help="pending, replayed, discarded or all")] = "pending",
    as_json: JsonOption = False,
) -> None:
    """List the dead letters of a service, or of every service."""
    from rich.table import Table

    from ates.platform.deadletters import list_dead_letters

    settings = load_settings(data_dir)
    services = [_check_service(service)] if service else list(SERVICES)

    async def _main() -> None:
        found = []
        for name in services:
            async with service_runtime(name, settings) as runtime:
                letters = await list_dead_letters(runtime.db, None if status == "all" else status)
            found += [(name, letter) for letter in letters]
        if as_json:
            print_json([{"service": name, **letter.__dict__} for name, letter in found])
            return
        table = Table("service", "id", "event", "event id", "attempts", "status", "error")
        for name, letter in found:
            table.add_row(
                name,
                str(letter.id),
                letter.event_name or "?",
                letter.event_id or "?",
                str(letter.attempts),
                letter.status,
                letter.error[:80],
            )
        where = service or "any service"
        console.print(table if found else f"{where}: no {status} dead letters")

    run(_main())


@dlq_app.command("show")
def dlq_show(service: ServiceArg, letter_id: int, data_dir: DataDirOption = None) -> None:
    """Show one dead letter in full."""
    from ates.platform.deadletters import get_dead_letter

    settings = load_settings(data_dir)

    async def _main() -> None:
        async with service_runtime(_check_service(service), settings) as runtime:
            letter = await get_dead_letter(runtime.db, letter_id)
        if letter is None:
            fail(f"{service} has no dead letter {letter_id}", code=1)
        console.print_json(json.dumps({**letter.__dict__, "created_at": str(letter.created_at)}))

    run(_main())


@dlq_app.command("replay")
def dlq_replay(service: ServiceArg, letter_id: int, data_dir: DataDirOption = None) -> None:
    """Apply a dead letter again (after a fix); it goes through the inbox like any event."""
    from ates.platform import deadletters

    settings = load_settings(data_dir)

    async def _main() -> None:
        async with service_runtime(_check_service(service), settings) as runtime:
            try:
                outcome = await deadletters.replay(runtime.consumer(), letter_id)
            except (LookupError, ValueError) as error:
                fail(str(error), code=1)
            except Exception as error:
                fail(f"replay of {letter_id} failed, it stays pending: {error!r}", code=1)
        console.print(f"dead letter {letter_id}: {outcome}")

    run(_main())


@dlq_app.command("discard")
def dlq_discard(service: ServiceArg, letter_id: int, data_dir: DataDirOption = None) -> None:
    """Mark a dead letter as discarded (kept for the record, never applied)."""
    from ates.platform import deadletters

    settings = load_settings(data_dir)

    async def _main() -> None:
        async with service_runtime(_check_service(service), settings) as runtime:
            try:
                await deadletters.discard(runtime.db, letter_id)
            except LookupError as error:
                fail(str(error), code=1)
        console.print(f"dead letter {letter_id}: discarded")

    run(_main())


@app.command()
def status(
    services: Annotated[
        list[str] | None,
        typer.Argument(help=f"Some of: {', '.join(SERVICES)}; all if omitted.", show_default=False),
    ] = None,
    data_dir: DataDirOption = None,
    port_base: Annotated[
        int | None,
        typer.Option(
            help="The port base of the system; found from the data directory when "
            "'ates up' runs there."
        ),
    ] = None,
    url: Annotated[
        list[str] | None,
        typer.Option(help="SERVICE=URL: where a service answers (repeat for each)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="ATES_TOKEN", help="An admin's access token ('ates token')."),
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="Sign in as this admin (with --password) instead.")
    ] = None,
    password: Annotated[str | None, typer.Option(help="The admin's password.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")] = False,
) -> None:
    """Each service's health, version, outbox backlog, dead letters, consumer groups with
    their lag, and the broker's streams. Asks every service's admin status endpoint as an
    admin: --token, or --username/--password, or else the demo admin of 'ates up'. Exits
    1 if a service cannot be read."""
    from ates import statusreport
    from ates.password_login import LoginFailed

    settings = stack_settings(data_dir, port_base)
    urls = {name: settings.public_url(name) for name in services or SERVICES}
    for given in url or []:
        name, sep, address = given.partition("=")
        if not sep or not address.startswith(("http://", "https://")):
            fail(f"--url {given!r}: write it SERVICE=http://host:port")
        urls[_check_service(name)] = address.rstrip("/")
    for name in urls:
        _check_service(name)
    if token is None:
        try:
            token = statusreport.admin_token(
                urls.get("auth", settings.public_url("auth")), settings.data_dir, username, password
            )
        except (statusreport.NoCredentials, LoginFailed) as error:
            fail(str(error), code=1)
    report = statusreport.gather(urls, token)
    if as_json:
        print_json(report)
    else:
        statusreport.render(report)
    if not statusreport.all_ok(report):
        raise typer.Exit(1)


@app.command()
def simulate(
    data_dir: DataDirOption = None,
    port_base: Annotated[
        int | None,
        typer.Option(
            help="The port base of the running system; found from the data directory when "
            "'ates up' runs there."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=0, max=100, help="New workers to create.")] = 5,
    tasks: Annotated[int, typer.Option(min=0, max=5000, help="Tasks to create.")] = 40,
    shuffles: Annotated[int, typer.Option(min=0, max=100, help="Shuffle presses.")] = 1,
    complete_ratio: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of the tasks completed.")
    ] = 0.7,
    close_day: Annotated[
        bool,
        typer.Option(
            "--close-day/--no-close-day",
            help="Close today in billing at the end (pays out; later movements go to tomorrow).",
        ),
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Repeat the same choices.")] = None,
    wait: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait for events to reach each service.")
    ] = 60.0,
) -> None:
    """Fill a running system with a believable day of work, through its HTTP API only:
    workers, tasks, shuffles, completions, optionally the day's close; then a summary."""
    from ates import simulate as simulation

    settings = stack_settings(data_dir, port_base)
    plan = simulation.Plan(
        workers=workers,
        tasks=tasks,
        shuffles=shuffles,
        complete_ratio=complete_ratio,
        close_day=close_day,
        seed=seed,
        wait_seconds=wait,
    )
    try:
        summary = simulation.run(settings, plan, say=console.print)
    except simulation.SimulationError as error:
        fail(str(error), code=1)
    console.print(simulation.render(summary, settings))


def _mount_service_commands() -> None:
    from importlib import import_module

    for service in SERVICES:
        import_module(f"ates.services.{service}.cli").register(app)


_mount_service_commands()


@app.callback()
def _before_every_command() -> None:
    # Every command logs through the platform's pipeline (redacted, tracebacks without
    # local variables), warnings and worse only: a command's output is what it prints.
    # `ates serve` and `ates up` configure their own level. Here, not at import: help
    # is printed without loading the logging stack (a group's --help, `ates users --help`,
    # passes through here first: nothing will log then).
    import sys

    if "--help" in sys.argv[1:]:
        return
    from ates.platform.telemetry import configure_logging

    configure_logging("WARNING")


def main() -> None:
    app()
