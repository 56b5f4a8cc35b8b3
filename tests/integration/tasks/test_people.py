"""The tasks service's copy of people: every account event, in any order, applied once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from ates.services.tasks.models import Person
from tests.integration.tasks.helpers import account_event, announce, person_data
from tests.support import Harness

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 3, 9, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def _person(harness: Harness, public_id: str) -> Person:
    async with harness.db.reader() as session:
        person = await session.scalar(select(Person).where(Person.public_id == public_id))
    assert person is not None
    return person


def _state(person: Person) -> tuple[str | None, str | None, str | None, bool]:
    return person.username, person.full_name, person.role, person.active


async def test_in_order_every_account_event_shapes_the_copy(tasks: Harness) -> None:
    data = person_data("worker", "Polly Parrot")
    pid = data["public_id"]
    await announce(tasks.runtime, "AccountCreated", data, at(0))
    assert _state(await _person(tasks, pid)) == (data["username"], "Polly Parrot", "worker", True)
    await announce(
        tasks.runtime,
        "AccountRoleChanged",
        {"public_id": pid, "old_role": "worker", "new_role": "manager"},
        at(1),
    )
    assert (await _person(tasks, pid)).role == "manager"
    updated = {**data, "full_name": "Polly P. Parrot", "role": "worker", "active": True}
    await announce(tasks.runtime, "AccountUpdated", updated, at(2))
    person = await _person(tasks, pid)
    assert (person.full_name, person.role, person.active) == ("Polly P. Parrot", "worker", True)
    await announce(tasks.runtime, "AccountDeactivated", {"public_id": pid}, at(3))
    assert (await _person(tasks, pid)).active is False
    await announce(tasks.runtime, "AccountUpdated", {**updated, "active": True}, at(4))
    assert (await _person(tasks, pid)).active is True  # reactivated by an admin


async def test_a_role_change_before_the_creation_is_kept(tasks: Harness) -> None:
    data = person_data("worker")
    pid = data["public_id"]
    await announce(
        tasks.runtime,
        "AccountRoleChanged",
        {"public_id": pid, "old_role": "worker", "new_role": "manager"},
        at(5),
    )
    assert _state(await _person(tasks, pid)) == (None, None, "manager", True)
    await announce(tasks.runtime, "AccountCreated", data, at(0))  # late, and older
    expected = (data["username"], data["full_name"], "manager", True)
    assert _state(await _person(tasks, pid)) == expected


async def test_a_deactivation_before_the_creation_is_kept(tasks: Harness) -> None:
    data = person_data("worker")
    pid = data["public_id"]
    await announce(tasks.runtime, "AccountDeactivated", {"public_id": pid}, at(5))
    person = await _person(tasks, pid)
    assert (person.role, person.active) == (None, False)
    await announce(tasks.runtime, "AccountCreated", data, at(0))
    expected = (data["username"], data["full_name"], "worker", False)
    assert _state(await _person(tasks, pid)) == expected


async def test_an_older_update_does_not_undo_a_newer_one(tasks: Harness) -> None:
    data = person_data("worker", "Polly Parrot")
    pid = data["public_id"]
    await announce(tasks.runtime, "AccountCreated", data, at(0))
    newer = {**data, "full_name": "Polly Newer", "role": "admin", "active": False}
    older = {**data, "full_name": "Polly Older", "role": "manager", "active": True}
    await announce(tasks.runtime, "AccountUpdated", newer, at(10))
    await announce(tasks.runtime, "AccountUpdated", older, at(5))
    await announce(
        tasks.runtime,
        "AccountRoleChanged",
        {"public_id": pid, "old_role": "worker", "new_role": "worker"},
        at(7),
    )
    person = await _person(tasks, pid)
    assert (person.full_name, person.role, person.active) == ("Polly Newer", "admin", False)


async def test_facts_are_versioned_one_by_one(tasks: Harness) -> None:
    """A newer role change and an older update each keep the fact they are newest for."""
    data = person_data("worker", "Polly Parrot")
    pid = data["public_id"]
    await announce(
        tasks.runtime,
        "AccountRoleChanged",
        {"public_id": pid, "old_role": "worker", "new_role": "manager"},
        at(10),
    )
    renamed = {**data, "full_name": "Polly Renamed", "active": True}
    await announce(tasks.runtime, "AccountUpdated", renamed, at(5))
    person = await _person(tasks, pid)
    assert (person.full_name, person.role) == ("Polly Renamed", "manager")


async def test_a_redelivered_event_is_applied_once(tasks: Harness) -> None:
    data = person_data("worker")
    event = account_event("AccountCreated", data, at(0))
    consumer = tasks.runtime.consumer()
    assert await consumer.apply(event) is True
    assert await consumer.apply(event) is False
    async with tasks.db.reader() as session:
        rows = (await session.scalars(select(Person))).all()
    assert [p.public_id for p in rows] == [data["public_id"]]
