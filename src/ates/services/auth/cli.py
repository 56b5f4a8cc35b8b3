"""``ates users …`` and ``ates token``."""

from __future__ import annotations

from typing import Annotated

import typer

from ates.clitools import DataDirOption, console, fail, load_settings, with_runtime
from ates.platform.service import Runtime
from ates.services.auth import handlers
from ates.services.auth.domain import PersonRuleError

users_app = typer.Typer(no_args_is_help=True, help="People (works with or without the stack).")


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


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
