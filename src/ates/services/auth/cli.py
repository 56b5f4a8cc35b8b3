"""``ates users …``, ``ates keys …`` and ``ates token``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from ates.clitools import DataDirOption, console, fail, load_settings, with_runtime
from ates.platform.service import Runtime
from ates.services.auth import handlers
from ates.services.auth.domain import PersonConflict, PersonRuleError

users_app = typer.Typer(no_args_is_help=True, help="People (works with or without the stack).")
keys_app = typer.Typer(no_args_is_help=True, help="Auth's token signing keys.")


@users_app.command("create")
def create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, manager, accountant or worker")],
    password: Annotated[str, typer.Option(help="At least 8 characters.")],
    email: Annotated[str | None, typer.Option()] = None,
    full_name: Annotated[str | None, typer.Option("--full-name")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a person (publishes AccountCreated)."""
    settings = load_settings(data_dir)
    command = handlers.CreatePerson(
        username=username, role=role, password=password, email=email, full_name=full_name
    )

    async def _create(runtime: Runtime) -> None:
        async with runtime.uow() as uow:
            person = await handlers.create_person(uow, command)
        console.print(f"created {person.username} ({person.role}) {person.public_id}")

    try:
        with_runtime("auth", settings, _create)
    except PersonRuleError as error:
        fail(str(error))
    except handlers.PersonExists as error:
        fail(str(error), code=1)


@users_app.command("list")
def list_(data_dir: DataDirOption = None) -> None:
    """List people."""
    from rich.table import Table

    settings = load_settings(data_dir)

    async def _list(runtime: Runtime) -> None:
        async with runtime.uow() as uow:
            people = await handlers.list_people(uow)
        table = Table("username", "role", "active", "full name", "email", "public id")
        for p in people:
            table.add_row(
                p.username, p.role, "yes" if p.active else "no", p.full_name, p.email, p.public_id
            )
        console.print(table)

    with_runtime("auth", settings, _list)


def _change(username: str, data_dir: DataDirOption, **change: object) -> None:
    settings = load_settings(data_dir)

    async def _apply(runtime: Runtime) -> None:
        async with runtime.uow() as uow:
            person = await handlers.find_person(uow, username)
        if person is None:
            fail(f"no person with username {username!r}", code=1)
        async with runtime.uow() as uow:
            person = await handlers.change_person(
                uow,
                handlers.ChangePerson(public_id=person.public_id, **change),  # type: ignore[arg-type]
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
    role: Annotated[str, typer.Argument(help="admin, manager, accountant or worker")],
    data_dir: DataDirOption = None,
) -> None:
    """Change a person's role (publishes AccountRoleChanged and AccountUpdated)."""
    _change(username, data_dir, role=role)


@users_app.command("deactivate")
def deactivate(username: str, data_dir: DataDirOption = None) -> None:
    """Deactivate a person: no sign-in, refresh tokens revoked (AccountDeactivated)."""
    _change(username, data_dir, active=False)


@users_app.command("activate")
def activate(username: str, data_dir: DataDirOption = None) -> None:
    """Reactivate a deactivated person (AccountUpdated)."""
    _change(username, data_dir, active=True)


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
def list_keys(data_dir: DataDirOption = None) -> None:
    """List signing keys, newest last: kid, algorithm, created, retires (one per line)."""
    from ates.services.auth.oauth.keys import KeyStore

    settings = load_settings(data_dir)

    async def _list(runtime: Runtime) -> None:
        # plain lines, not a table: a kid is long and scripts read this
        for key in await KeyStore(runtime.db).list():
            retires = key.retire_at.isoformat() if key.retire_at else "-"
            typer.echo(f"{key.kid}\t{key.algorithm}\t{key.created_at.isoformat()}\t{retires}")

    with_runtime("auth", settings, _list)


def token(
    username: str,
    password: Annotated[str, typer.Option(help="The person's password.")],
    data_dir: DataDirOption = None,
) -> None:
    """Print an access token for USERNAME, got from the running auth service through the
    PKCE flow of the ``ates-cli`` client (for scripts and curl)."""
    from ates.services.auth.password_login import LoginFailed, password_login

    settings = load_settings(data_dir)
    try:
        response = password_login(settings.public_url("auth"), username, password)
    except LoginFailed as error:
        fail(str(error), code=1)
    print(response["access_token"])


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.command("token")(token)
