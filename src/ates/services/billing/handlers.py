"""Event handlers and use cases of the billing service."""

from __future__ import annotations

from sqlalchemy import select

from ates.platform.events import Event
from ates.platform.uow import UnitOfWork
from ates.services.billing.models import Account


async def on_account_created(event: Event, uow: UnitOfWork) -> None:
    data = event.data
    account = await uow.session.scalar(
        select(Account).where(Account.owner_public_id == data["public_id"])
    )
    if account is None:
        account = Account(owner_public_id=data["public_id"], balance_cents=0)
        uow.session.add(account)
    account.owner_name = data["full_name"]
    account.owner_email = data["email"]


HANDLERS = {
    "AccountCreated": on_account_created,
}
