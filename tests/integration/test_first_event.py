"""The first event across services: auth creates a person, tasks and billing keep copies."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ates.config import Settings
from ates.services.auth.commands import CreatePerson, create_person
from ates.services.billing.models import Account
from ates.services.tasks.models import Person as TaskPerson
from tests.support import TokenFactory, eventually, service_harness

pytestmark = pytest.mark.integration


async def test_account_created_reaches_tasks_and_billing(
    settings: Settings, tokens: TokenFactory
) -> None:
    async with (
        service_harness("auth", settings, tokens) as auth,
        service_harness("tasks", settings, tokens) as tasks,
        service_harness("billing", settings, tokens) as billing,
    ):
        async with auth.runtime.uow() as uow:
            person = await create_person(
                uow,
                CreatePerson(
                    username="polly",
                    role="worker",
                    password="pieces-of-8",
                    full_name="Polly Parrot",
                ),
            )

        async def tasks_copy() -> TaskPerson | None:
            async with tasks.db.reader() as session:
                return await session.scalar(
                    select(TaskPerson).where(TaskPerson.public_id == person.public_id)
                )

        async def billing_account() -> Account | None:
            async with billing.db.reader() as session:
                return await session.scalar(
                    select(Account).where(Account.owner_public_id == person.public_id)
                )

        copy = await eventually(tasks_copy)
        account = await eventually(billing_account)
        assert (copy.username, copy.full_name, copy.role, copy.active) == (
            "polly",
            "Polly Parrot",
            "worker",
            True,
        )
        assert account.owner_name == "Polly Parrot"
        assert account.balance_cents == 0
