"""Event handlers of the billing service: people, tasks, and the money their events move.

Each handler runs inside the consumer's unit of work, after the event's id went into the
inbox. They tolerate any order (a task or person first heard of in a later event is
created on the spot) and any number of deliveries (the ledger's idempotency key is the
event id, so even an event read again through a fresh inbox books nothing twice).

The random source of prices is injected: ``make_handlers(random.Random(seed))`` in tests,
the operating system's in production.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ates.platform.consumer import Batched, Handler, Rejected
from ates.platform.events import Event
from ates.platform.events.ordering import event_stamp, is_newer
from ates.platform.uow import UnitOfWork
from ates.schemas.accounts import (
    AccountCreated,
    AccountDeactivated,
    AccountRoleChanged,
    AccountUpdated,
)
from ates.services.billing import booking, domain, ledger
from ates.services.billing.models import Account


async def _person(uow: UnitOfWork, owner_public_id: str) -> Account:
    return await ledger.person_account(uow.session, owner_public_id)


def _set_profile(account: Account, profile: AccountCreated | AccountUpdated, at: str) -> None:
    if is_newer(at, account.profile_stamp):
        account.owner_name = profile.full_name
        account.owner_email = profile.email
        account.owner_username = profile.username
        account.profile_stamp = at
    if is_newer(at, account.role_stamp):
        account.owner_role = profile.role
        account.role_stamp = at


async def on_account_created(event: Event, uow: UnitOfWork) -> None:
    created = AccountCreated.of(event)
    _set_profile(await _person(uow, created.public_id), created, event_stamp(event))


async def on_account_updated(event: Event, uow: UnitOfWork) -> None:
    updated, at = AccountUpdated.of(event), event_stamp(event)
    account = await _person(uow, updated.public_id)
    _set_profile(account, updated, at)
    if is_newer(at, account.active_stamp):
        account.active = updated.active
        account.active_stamp = at


async def on_account_role_changed(event: Event, uow: UnitOfWork) -> None:
    changed = AccountRoleChanged.of(event)
    account = await _person(uow, changed.public_id)
    if is_newer(at := event_stamp(event), account.role_stamp):
        account.owner_role = changed.new_role
        account.role_stamp = at


async def on_account_deactivated(event: Event, uow: UnitOfWork) -> None:
    # The account stays open: money already earned is still paid out at the day's end.
    account = await _person(uow, AccountDeactivated.of(event).public_id)
    if is_newer(at := event_stamp(event), account.active_stamp):
        account.active = False
        account.active_stamp = at


def _rejecting_bad_money(apply: Batched) -> Batched:
    """An amount the ledger refuses (negative, not whole cents, out of its range) will be
    refused on every retry: straight to the dead letters, with the reason."""

    async def guarded(events: Sequence[Event], uow: UnitOfWork) -> None:
        try:
            await apply.apply(events, uow)
        except domain.LedgerError as error:
            raise Rejected(f"{events[0].event_name}: {error}") from error

    return Batched(guarded)


def make_handlers(rng: random.Random) -> dict[str, Handler]:
    """The billing handlers, drawing task prices from ``rng``. Task events are booked a
    run at a time (``booking``); people's events, rare, one by one."""

    async def book(events: Sequence[Event], uow: UnitOfWork) -> None:
        await booking.book_task_events(events, uow, rng)

    task_events = _rejecting_bad_money(Batched(book))
    return {
        "AccountCreated": on_account_created,
        "AccountUpdated": on_account_updated,
        "AccountRoleChanged": on_account_role_changed,
        "AccountDeactivated": on_account_deactivated,
        "TaskCreated": task_events,
        "TaskAssigned": task_events,
        "TaskCompleted": task_events,
    }


# Production draws prices from the operating system's randomness.
HANDLERS = make_handlers(random.SystemRandom())
