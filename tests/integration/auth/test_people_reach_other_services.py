"""A person created through auth's API reaches billing (an account) and tasks (their
name) through events only: the services share no database and do not call each other."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ates.config import Settings
from ates.services.auth.commands import CreatePerson, create_person
from ates.services.billing.models import Account
from ates.services.tasks.models import Person as TaskPerson
from tests.support import TokenFactory, eventually, service_harness

pytestmark = pytest.mark.integration


async def test_a_person_created_through_the_api_reaches_billing_and_tasks(
    settings: Settings, tokens: TokenFactory
) -> None:
    async with (
        service_harness("auth", settings, tokens) as auth,
        service_harness("tasks", settings, tokens) as tasks,
        service_harness("billing", settings, tokens) as billing,
    ):
        async with auth.runtime.uow() as uow:
            admin = await create_person(
                uow, CreatePerson(username="ada", role="admin", password="ada's password")
            )
        response = await auth.client.post(
            "/api/users",
            json={
                "username": "polly",
                "email": "polly@example.com",
                "full_name": "Polly Parrot",
                "role": "worker",
                "password": "pieces of eight",
            },
            headers=tokens.headers("admin", admin.public_id, username="ada"),
        )
        assert response.status_code == 201, response.text
        polly = response.json()["public_id"]

        async def copy_in_tasks() -> TaskPerson | None:
            async with tasks.db.reader() as session:
                return await session.scalar(select(TaskPerson).where(TaskPerson.public_id == polly))

        async def account_in_billing() -> Account | None:
            async with billing.db.reader() as session:
                return await session.scalar(select(Account).where(Account.owner_public_id == polly))

        copy = await eventually(copy_in_tasks)
        assert (copy.username, copy.full_name, copy.role, copy.active) == (
            "polly",
            "Polly Parrot",
            "worker",
            True,
        )
        account = await eventually(account_in_billing)
        assert (account.owner_name, account.balance_cents) == ("Polly Parrot", 0)
