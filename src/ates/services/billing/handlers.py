"""Event handlers of the billing service: people, tasks, and the money their events move.

Each handler runs inside the consumer's unit of work, after the event's id went into the
inbox. They tolerate any order (a task or person first heard of in a later event is
created on the spot) and any number of deliveries (the ledger's idempotency key is the
event id, so even a replay through a fresh inbox books nothing twice).

The random source of prices is injected: ``make_handlers(random.Random(seed))`` in tests,
the operating system's in production.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import sqlalchemy as sa

from ates.platform.consumer import Handler, Rejected
from ates.platform.events import Event
from ates.platform.events.ordering import is_newer
from ates.platform.uow import UnitOfWork
from ates.services.billing import domain, ledger
from ates.services.billing.models import Account, Transaction


async def _person(uow: UnitOfWork, owner_public_id: str) -> Account:
    return await ledger.person_account(uow.session, owner_public_id)


def _set_profile(account: Account, event: Event) -> None:
    data = event.data
    if is_newer(event.event_time, account.profile_at):
        account.owner_name = data["full_name"]
        account.owner_email = data["email"]
        account.owner_username = data["username"]
        account.profile_at = event.event_time
    if is_newer(event.event_time, account.role_at):
        account.owner_role = data["role"]
        account.role_at = event.event_time


async def on_account_created(event: Event, uow: UnitOfWork) -> None:
    _set_profile(await _person(uow, event.data["public_id"]), event)


async def on_account_updated(event: Event, uow: UnitOfWork) -> None:
    account = await _person(uow, event.data["public_id"])
    _set_profile(account, event)
    if is_newer(event.event_time, account.active_at):
        account.active = bool(event.data["active"])
        account.active_at = event.event_time


async def on_account_role_changed(event: Event, uow: UnitOfWork) -> None:
    account = await _person(uow, event.data["public_id"])
    if is_newer(event.event_time, account.role_at):
        account.owner_role = event.data["new_role"]
        account.role_at = event.event_time


async def on_account_deactivated(event: Event, uow: UnitOfWork) -> None:
    # The account stays open: money already earned is still paid out at the day's end.
    account = await _person(uow, event.data["public_id"])
    if is_newer(event.event_time, account.active_at):
        account.active = False
        account.active_at = event.event_time


def _moment(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"{field}: not an RFC 3339 date-time: {value!r}")
    if moment.tzinfo is None:
        raise Rejected(f"{field}: a date-time must carry its time zone: {value!r}")
    return moment


async def _book(
    uow: UnitOfWork,
    event: Event,
    posting: domain.Posting,
    reason: domain.Reason,
    task: ledger.PricedTask,
    happened_at: datetime,
) -> None:
    day, late_from = await ledger.booking_day(uow.session, happened_at)
    await ledger.post(
        uow,
        posting,
        key=str(event.event_id),
        reason=reason,
        business_date=day,
        booked_late_from=late_from,
        task=task,
    )


def _rejecting_bad_money(handler: Handler) -> Handler:
    """An amount the ledger refuses (negative, not whole cents, out of its range) will be
    refused on every retry: straight to the dead letters, with the reason."""

    async def apply(event: Event, uow: UnitOfWork) -> None:
        try:
            await handler(event, uow)
        except domain.LedgerError as error:
            raise Rejected(f"{event.event_name}: {error}")

    return apply


def make_handlers(rng: random.Random) -> dict[str, Handler]:
    """The billing handlers, drawing task prices from ``rng``."""

    async def on_task_created(event: Event, uow: UnitOfWork) -> None:
        data = event.data  # a v1 event arrives upcast: the jira id is out of the title
        await ledger.priced_task(uow, data["public_id"], rng, datetime.now(UTC))
        await ledger.name_task(uow.session, data["public_id"], data["title"], data.get("jira_id"))

    async def on_task_assigned(event: Event, uow: UnitOfWork) -> None:
        data = event.data
        task = await ledger.priced_task(uow, data["task_public_id"], rng, datetime.now(UTC))
        worker = data["assignee_public_id"]
        shuffled = data["reason"] == "shuffle"
        await _book(
            uow,
            event,
            domain.fee_posting(worker, task.price),
            domain.Reason.SHUFFLED if shuffled else domain.Reason.ASSIGNED,
            task,
            event.event_time,  # the moment tasks assigned it, not when we heard of it
        )

    async def on_task_completed(event: Event, uow: UnitOfWork) -> None:
        data = event.data
        completed_at = _moment(data["completed_at"], "completed_at")
        task = await ledger.priced_task(uow, data["task_public_id"], rng, datetime.now(UTC))
        if await ledger.already_booked(uow.session, str(event.event_id)):
            return
        rewarded = await uow.session.scalar(
            sa.select(Transaction.public_id).where(
                Transaction.task_public_id == task.public_id, Transaction.kind == "reward"
            )
        )
        if rewarded is not None:
            # A task completes once (T6): a second completion under another event id is a
            # producer's bug to inspect, not money to pay again.
            raise Rejected(f"task {task.public_id} was already rewarded (transaction {rewarded})")
        worker = data["assignee_public_id"]
        await _book(
            uow,
            event,
            domain.reward_posting(worker, task.price),
            domain.Reason.COMPLETED,
            task,
            completed_at,
        )

    return {
        "AccountCreated": on_account_created,
        "AccountUpdated": on_account_updated,
        "AccountRoleChanged": on_account_role_changed,
        "AccountDeactivated": on_account_deactivated,
        "TaskCreated": _rejecting_bad_money(on_task_created),
        "TaskAssigned": _rejecting_bad_money(on_task_assigned),
        "TaskCompleted": _rejecting_bad_money(on_task_completed),
    }


# Production draws prices from the operating system's randomness.
HANDLERS = make_handlers(random.SystemRandom())
