"""A test's view of one billing database: deliver events the way the consumer does, close
days, and read balances and prices back."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, datetime

import sqlalchemy as sa

from ates.platform.broker import Ack, Delivery, Outcome, subject_for
from ates.platform.consumer import EventConsumer, Handler
from ates.platform.db import Database
from ates.platform.events import Event, default_registry
from ates.platform.tables import dead_letters
from ates.platform.uow import UnitOfWork
from ates.services.billing import commands, ledger, queries, verify
from ates.services.billing.consumers import make_handlers
from ates.services.billing.models import Account, Transaction


class Books:
    def __init__(
        self,
        db: Database,
        rng: random.Random,
        inbox: str = "billing",
        handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        """``handlers``: billing's own (``make_handlers(rng)``) unless a test wraps them."""
        self.db = db
        self.registry = default_registry()
        self.consumer = EventConsumer(
            "billing", db, handlers or make_handlers(rng), self.registry, inbox_name=inbox
        )

    async def deliver(self, event: Event, attempt: int = 1) -> Outcome:
        """Through the whole consumer path: parse, validate, upcast, inbox, handler."""
        domain = self.registry.domain_of(event.event_name)
        delivery = Delivery(
            body=event.to_json().encode(),
            subject=subject_for(domain, event.event_name),
            attempt=attempt,
        )
        return await self.consumer.deliver_one(delivery)

    async def apply(self, event: Event) -> None:
        outcome = await self.deliver(event)
        assert outcome == Ack(), outcome

    def new_uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, "billing")

    async def close(self, day: date, now: datetime) -> commands.DayClose:
        async with UnitOfWork(self.db, "billing") as uow:
            return await commands.close_day(uow, day, now=now)

    async def set_timezone(self, zone: str) -> None:
        async with UnitOfWork(self.db, "billing") as uow:
            await ledger.set_timezone(uow.session, zone)
            await uow.commit()

    async def balance(self, owner: str) -> int:
        async with self.db.reader() as session:
            account = await queries.account_of(session, owner)
            return account.balance_cents if account else 0

    async def account(self, owner: str) -> Account | None:
        async with self.db.reader() as session:
            return await queries.account_of(session, owner)

    async def price(self, task: str) -> tuple[int, int]:
        async with self.db.reader() as session:
            found = await queries.task_price(session, task)
            assert found is not None, f"task {task} has no price"
            return found.assign_fee_cents, found.reward_cents

    async def log(self, owner: str, day: date) -> list[queries.Movement]:
        async with self.db.reader() as session:
            account = await queries.account_of(session, owner)
            assert account is not None
            return await queries.day_log(session, account, day)

    async def earnings(self, *on: date) -> dict[date, int]:
        async with self.db.reader() as session:
            return await queries.earnings_by_day(session, list(on))

    async def transactions(self) -> list[Transaction]:
        async with self.db.reader() as session:
            return list((await session.scalars(sa.select(Transaction))).all())

    async def problems(self) -> list[str]:
        async with self.db.reader() as session:
            return await verify.problems(session)

    async def dead_letters(self) -> list[str]:
        async with self.db.reader() as session:
            return list((await session.scalars(sa.select(dead_letters.c.error))).all())
