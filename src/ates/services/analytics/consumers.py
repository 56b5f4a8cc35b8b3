"""Event handlers of analytics: every projection is changed here or in ``projector``, and
only from events.

Each handler is safe in any order and under redelivery: the inbox drops duplicates, sums
only add, "latest" values carry a stamp and keep the newest, and the most expensive task
of a bucket is a maximum under a total order (``domain.Completion.rank``).
"""

from __future__ import annotations

from sqlalchemy import delete

from ates.platform.consumer import Batched, Handler
from ates.platform.events import Event
from ates.platform.events.ordering import event_stamp
from ates.platform.uow import UnitOfWork
from ates.schemas.accounts import (
    AccountCreated,
    AccountDeactivated,
    AccountRoleChanged,
    AccountUpdated,
)
from ates.services.analytics.domain import PersonFacts, PersonState, merge_person
from ates.services.analytics.models import PROJECTIONS, Person
from ates.services.analytics.projector import EVENTS, project

# --- people -----------------------------------------------------------------------------


async def _merge_person(uow: UnitOfWork, public_id: str, facts: PersonFacts) -> None:
    row = await uow.session.get(Person, public_id, with_for_update=True)
    if row is None:
        row = Person(public_id=public_id)
        uow.session.add(row)
        state = PersonState()
    else:
        state = PersonState(
            username=row.username,
            email=row.email,
            full_name=row.full_name,
            role=row.role,
            active=row.active,
            profile_stamp=row.profile_stamp,
            role_stamp=row.role_stamp,
            active_stamp=row.active_stamp,
        )
    merged = merge_person(state, facts)
    row.username, row.email, row.full_name = merged.username, merged.email, merged.full_name
    row.role, row.active = merged.role, merged.active
    row.profile_stamp = merged.profile_stamp
    row.role_stamp, row.active_stamp = merged.role_stamp, merged.active_stamp


async def _merge_profile(
    uow: UnitOfWork, event: Event, profile: AccountCreated | AccountUpdated
) -> None:
    """A whole profile: a created account is active, an updated one says whether it is."""
    facts = PersonFacts(
        stamp=event_stamp(event),
        username=profile.username,
        email=profile.email,
        full_name=profile.full_name,
        role=profile.role,
        active=profile.active if isinstance(profile, AccountUpdated) else True,
    )
    await _merge_person(uow, profile.public_id, facts)


async def on_account_created(event: Event, uow: UnitOfWork) -> None:
    await _merge_profile(uow, event, AccountCreated.of(event))


async def on_account_updated(event: Event, uow: UnitOfWork) -> None:
    await _merge_profile(uow, event, AccountUpdated.of(event))


async def on_account_role_changed(event: Event, uow: UnitOfWork) -> None:
    changed = AccountRoleChanged.of(event)
    await _merge_person(
        uow, changed.public_id, PersonFacts(event_stamp(event), role=changed.new_role)
    )


async def on_account_deactivated(event: Event, uow: UnitOfWork) -> None:
    public_id = AccountDeactivated.of(event).public_id
    await _merge_person(uow, public_id, PersonFacts(event_stamp(event), active=False))


# --- rebuild ----------------------------------------------------------------------------


async def reset_projections(uow: UnitOfWork) -> None:
    """Forget everything analytics knows (``ates replay`` rebuilds it from the log)."""
    for model in PROJECTIONS:
        await uow.session.execute(delete(model))


# Every event of the domains analytics reads, so that a rebuild sees the whole log. Task
# and money events are projected a run at a time (``projector``); people's, rare, one by one.
_PROJECT = Batched(project)
HANDLERS: dict[str, Handler] = {
    "AccountCreated": on_account_created,
    "AccountUpdated": on_account_updated,
    "AccountRoleChanged": on_account_role_changed,
    "AccountDeactivated": on_account_deactivated,
    **dict.fromkeys(EVENTS, _PROJECT),
}
