"""``ates users …``, ``ates keys …`` and ``ates token``.

Each command imports the auth service's code when it runs, not when the command line
loads: ``ates --help`` stays quick.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ates.clitools import (
    DataDirOption,
    JsonOption,
    console,
    fail,
    load_settings,
    print_json,
    print_rows,
    stack_settings,
    with_runtime,
)

if TYPE_CHECKING:
    from ates.platform.runtime import Runtime
    from ates.services.auth.models import Person

users_app = typer.Typer(
    rich_markup_mode=None,
    no_args_is_help=True,
    help="People. These commands work whether or not the system runs.",
)
keys_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="The keys auth signs tokens with."
)

ROLE_HELP = "One of admin, manager, accountant or worker."


@users_app.command("create")
def create(
    username: str,
    role: Annotated[str, typer.Option(help=ROLE_HELP)],
    password: Annotated[str, typer.Option(help="At least 8 characters.")],
    email: Annotated[str | None, typer.Option(help="Their email address.")] = None,
    full_name: Annotated[
        str | None, typer.Option("--full-name", help="Their name as pages show it.")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a person (announced as AccountCreated)."""
    from ates.services.auth import commands
    from ates.services.auth.domain import PersonRuleError

    settings = load_settings(data_dir)
    command = commands.CreatePerson(
        username=username, role=role, password=password, email=email, full_name=full_name
    )

    async def _create(runtime: Runtime) -> None:
        async with runtime.uow() as uow:
            person = await commands.create_person(uow, command)
        console.print(f"created {person.username} ({person.role}) {person.public_id}")

    try:
        with_runtime("auth", settings, _create)
    except PersonRuleError as error:
        fail(str(error))
    except commands.PersonExists as error:
        fail(str(error), code=1)


@users_app.command("list")
def list_(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """List everyone, by username, with whole ids and emails whatever the terminal's width."""
    from ates.services.auth import queries

    settings = load_settings(data_dir)

    async def _list(runtime: Runtime) -> list[dict[str, Any]]:
        async with runtime.uow() as uow:  # read inside: the objects expire with it
            return [p.as_json() for p in await queries.list_people(uow)]

    people = with_runtime("auth", settings, _list)
    if as_json:
        print_json(people)
        return
    columns = ("username", "role", "active", "full_name", "email", "public_id")
    print_rows(
        tuple(c.replace("_", " ") for c in columns),
        [
            tuple(("yes" if p[c] else "no") if c == "active" else str(p[c]) for c in columns)
            for p in people
        ],
    )


async def _named(runtime: Runtime, username: str) -> Person:
    """The person called ``username``; without one the command fails (exit code 1)."""
    from ates.services.auth import queries

    async with runtime.uow() as uow:
        person = await queries.find_person(uow, username)
    if person is None:
        fail(f"no person with username {username!r}", code=1)
    return person


def _change(username: str, data_dir: DataDirOption, **change: object) -> None:
    from ates.services.auth import commands
    from ates.services.auth.domain import PersonConflict, PersonRuleError

    settings = load_settings(data_dir)

    async def _apply(runtime: Runtime) -> None:
        person = await _named(runtime, username)
        async with runtime.uow() as uow:
            person = await commands.change_person(
                uow,
                commands.ChangePerson(public_id=person.public_id, **change),  # type: ignore[arg-type]
            )
        state = "active" if person.active else "deactivated"
        console.print(f"{person.username}: {person.role}, {state}")

    try:
        with_runtime("auth", settings, _apply)
    except PersonRuleError as error:
        fail(str(error))
    except PersonConflict as error:
        fail(str(error), code=1)


@users_app.command("set-role")
def set_role(
    username: str,
    role: Annotated[str, typer.Argument(help=ROLE_HELP)],
    data_dir: DataDirOption = None,
) -> None:
    """Change a person's role (announced as AccountRoleChanged and AccountUpdated)."""
    _change(username, data_dir, role=role)


@users_app.command("deactivate")
def deactivate(username: str, data_dir: DataDirOption = None) -> None:
    """Deactivate a person: they can no longer sign in, and their refresh tokens are
    revoked (announced as AccountDeactivated)."""
    _change(username, data_dir, active=False)


@users_app.command("activate")
def activate(username: str, data_dir: DataDirOption = None) -> None:
    """Reactivate a deactivated person (announced as AccountUpdated)."""
    _change(username, data_dir, active=True)


@users_app.command("reset-password")
def reset_password(username: str, data_dir: DataDirOption = None) -> None:
    """Give a person a one-time password, printed here for you to tell them; they choose
    their own at their next sign-in (announced as AccountPasswordReset)."""
    from ates.services.auth import commands

    settings = load_settings(data_dir)

    async def _reset(runtime: Runtime) -> str:
        person = await _named(runtime, username)
        async with runtime.uow() as uow:
            _, one_time = await commands.reset_password(
                uow, commands.ResetPassword(public_id=person.public_id)
            )
        return one_time

    one_time = with_runtime("auth", settings, _reset)
    console.print(f"{username}'s one-time password (they choose their own at the next sign-in):")
    typer.echo(one_time)


@keys_app.command("rotate")
def rotate(data_dir: DataDirOption = None) -> None:
    """Sign new tokens with a new key; the old key stays published until its tokens expire."""
    from ates.services.auth.oauth.keys import KeyStore

    settings = load_settings(data_dir)
    # old tokens live at most the token lifetime; the margin covers clock skew and caches
    retire_after = timedelta(seconds=settings.access_token_ttl_seconds + 600)

    async def _rotate(runtime: Runtime) -> None:
        kid = await KeyStore(runtime.db).rotate(retire_after=retire_after)
        console.print(f"signing with {kid}; previous keys retire in {retire_after}")

    with_runtime("auth", settings, _rotate)


@keys_app.command("list")
def list_keys(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """List the signing keys, newest last: key id, algorithm, created, retires."""
    from ates.services.auth.oauth.keys import KeyStore

    settings = load_settings(data_dir)

    async def _list(runtime: Runtime) -> list[tuple[str, str, str, str]]:
        return [
            (
                str(key.kid),
                key.algorithm,
                key.created_at.isoformat(),
                key.retire_at.isoformat() if key.retire_at else "-",
            )
            for key in await KeyStore(runtime.db).list()
        ]

    keys = with_runtime("auth", settings, _list)
    if as_json:
        names = ("kid", "algorithm", "created_at", "retire_at")
        print_json([dict(zip(names, key, strict=True)) for key in keys])
        return
    # plain tab-separated lines: a kid is long and scripts read this
    for key in keys:
        typer.echo("\t".join(key))


def token(
    username: str,
    password: Annotated[str, typer.Option(help="The person's password.")],
    data_dir: DataDirOption = None,
) -> None:
    """Print an access token for USERNAME, for scripts and curl. It comes from the running
    auth service through the sign-in flow of the command line's own client; the system is
    found from its data directory."""
    from ates.password_login import LoginFailed, password_login

    settings = stack_settings(data_dir)
    try:
        response = password_login(settings.public_url("auth"), username, password)
    except LoginFailed as error:
        fail(str(error), code=1)
    print(response["access_token"])


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.command("token")(token)
