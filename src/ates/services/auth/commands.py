"""Use cases of the auth service: plain functions taking a unit of work. Reads are in
``queries``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from ates.platform.db import Database
from ates.platform.uow import UnitOfWork
from ates.schemas.accounts import (
    AccountCreated,
    AccountDeactivated,
    AccountPasswordReset,
    AccountRoleChanged,
    AccountUpdated,
    as_role,
)
from ates.services.auth import domain
from ates.services.auth.models import LoginThrottle, Person
from ates.services.auth.oauth.store import revoke_person_tokens
from ates.services.auth.passwords import check_password, new_password_hash
from ates.services.auth.queries import PersonNotFound


class PersonExists(Exception):
    pass


class SignInRefused(Exception):
    """Sign-in failed; the message is fit to show on the login page. ``locked``: refused
    because of too many failures, whatever the password."""

    def __init__(self, message: str, *, locked: bool = False) -> None:
        super().__init__(message)
        self.locked = locked


@dataclass(frozen=True)
class CreatePerson:
    username: str
    role: str
    password: str
    email: str | None = None
    full_name: str | None = None


@dataclass(frozen=True)
class ChangePerson:
    """An edit of a person. ``actor_public_id`` is the admin making it (``None``: an
    operator at the command line)."""

    public_id: str
    role: str | None = None
    full_name: str | None = None
    email: str | None = None
    active: bool | None = None
    actor_public_id: str | None = None


def profile(person: Person) -> domain.Profile:
    return domain.Profile(
        username=person.username,
        email=person.email,
        full_name=person.full_name,
        role=person.role,
        active=person.active,
    )


async def create_person(uow: UnitOfWork, command: CreatePerson) -> Person:
    username = domain.check_username(command.username)
    role = domain.check_role(command.role)
    domain.check_password(command.password)
    email = domain.check_email(command.email or domain.default_email(username))
    full_name = domain.check_full_name(command.full_name or username.title())
    session = uow.session
    if await session.scalar(select(Person.id).where(Person.username == username)):
        raise PersonExists(f"username {username!r} is taken")
    person = Person(
        username=username,
        email=email,
        full_name=full_name,
        role=role,
        active=True,
        password_hash=await new_password_hash(command.password),
    )
    session.add(person)
    await session.flush()
    await uow.emit(
        AccountCreated(
            public_id=person.public_id,
            username=person.username,
            email=person.email,
            full_name=person.full_name,
            role=as_role(person.role),
        )
    )
    await uow.commit()
    return person


async def change_person(uow: UnitOfWork, command: ChangePerson) -> Person:
    """Apply an admin's edit and announce it: AccountRoleChanged for a new role,
    AccountDeactivated for a deactivation (their refresh tokens are revoked with it), and
    AccountUpdated, the full profile after the change, for every change."""
    session = uow.session
    person = await session.scalar(
        select(Person).where(Person.public_id == command.public_id).with_for_update()
    )
    if person is None:
        raise PersonNotFound(f"no person {command.public_id}")
    # Locks the admins' rows (PostgreSQL; SQLite writers are serialised anyway), so two
    # admins demoting each other at once cannot leave nobody in charge.
    other_admins = (
        await session.scalars(
            select(Person.id)
            .where(Person.role == "admin", Person.active.is_(True), Person.id != person.id)
            .with_for_update()
        )
    ).all()
    plan = domain.plan_change(
        profile(person),
        domain.Change(
            role=command.role,
            full_name=command.full_name,
            email=command.email,
            active=command.active,
        ),
        other_active_admins=len(other_admins),
        by_self=command.actor_public_id == person.public_id,
    )
    if not plan.changed:
        return person
    old_role = person.role
    after = plan.after
    person.role, person.full_name, person.email, person.active = (
        after.role,
        after.full_name,
        after.email,
        after.active,
    )
    await session.flush()
    if plan.role_changed:
        await uow.emit(
            AccountRoleChanged(person.public_id, as_role(old_role), as_role(person.role))
        )
    if plan.deactivated:
        await revoke_person_tokens(session, person.public_id, datetime.now(UTC))
        await uow.emit(AccountDeactivated(person.public_id))
    await uow.emit(account_updated(person))
    await uow.commit()
    return person


@dataclass(frozen=True)
class ResetPassword:
    """An admin's reset of someone's password (``actor_public_id`` None: an operator)."""

    public_id: str
    actor_public_id: str | None = None


ONE_TIME_PASSWORD_BYTES = 9  # 12 characters of base64url: 72 random bits


async def reset_password(uow: UnitOfWork, command: ResetPassword) -> tuple[Person, str]:
    """Give the person a one-time password (returned, to be told to them; stored only
    hashed), to be replaced at their next sign-in. Their old password stops working and
    their refresh tokens are revoked in the same transaction; ``AccountPasswordReset``
    announces it."""
    session = uow.session
    person = await session.scalar(
        select(Person).where(Person.public_id == command.public_id).with_for_update()
    )
    if person is None:
        raise PersonNotFound(f"no person {command.public_id}")
    one_time = secrets.token_urlsafe(ONE_TIME_PASSWORD_BYTES)
    person.password_hash = await new_password_hash(one_time)
    person.must_change_password = True
    await revoke_person_tokens(session, person.public_id, datetime.now(UTC))
    await uow.emit(AccountPasswordReset(person.public_id, command.actor_public_id))
    await uow.commit()
    return person, one_time


async def choose_password(uow: UnitOfWork, public_id: str, password: str) -> Person:
    """The person's own new password, replacing a one-time one."""
    domain.check_password(password)
    person = await uow.session.scalar(
        select(Person).where(Person.public_id == public_id).with_for_update()
    )
    if person is None:
        raise PersonNotFound(f"no person {public_id}")
    person.password_hash = await new_password_hash(password)
    person.must_change_password = False
    await uow.commit()
    return person


def account_updated(person: Person) -> AccountUpdated:
    """The person's full profile, as ``AccountUpdated`` announces it."""
    p = profile(person)
    return AccountUpdated(
        public_id=person.public_id,
        username=p.username,
        email=p.email,
        full_name=p.full_name,
        role=as_role(p.role),
        active=p.active,
    )


# --- signing in ------------------------------------------------------------------------


def _throttle_key(username: str) -> str:
    return username.strip().lower()[:64]


async def sign_in(db: Database, username: str, password: str) -> Person:
    """Check a username and password; count failures per username and refuse while the
    username is locked (``domain.Throttle``). The slow hash check runs outside any write
    transaction so it never holds the database's write lock."""
    key = _throttle_key(username)
    now = datetime.now(UTC)
    async with db.reader() as session:
        row = await session.get(LoginThrottle, key)
        person = await session.scalar(select(Person).where(Person.username == key))
    throttle = _throttle(row)
    wait = throttle.locked_for(now)
    if wait is not None:
        raise SignInRefused(
            "Too many failed sign-ins for this username. "
            f"Try again in {domain.describe_wait(wait)}.",
            locked=True,
        )
    valid = await check_password(person.password_hash if person else None, password)
    async with UnitOfWork(db, producer="auth") as uow:
        row = await uow.session.get(LoginThrottle, key, with_for_update=True)
        if not valid:
            after = _throttle(row).after_failure(datetime.now(UTC))
            if row is None:
                row = LoginThrottle(username=key)
                uow.session.add(row)
            row.failures = after.failures
            row.window_started_at = after.window_started_at
            row.locked_until = after.locked_until
        elif row is not None:
            await uow.session.delete(row)
        await uow.commit()
    if not valid or person is None:
        raise SignInRefused("Wrong username or password.")
    if not person.active:
        # Said only after the password was right: guessing does not reveal who is inactive.
        raise SignInRefused("This account is deactivated. Ask an admin to reactivate it.")
    return person


def _throttle(row: LoginThrottle | None) -> domain.Throttle:
    if row is None:
        return domain.Throttle()
    return domain.Throttle(
        failures=row.failures,
        window_started_at=row.window_started_at,
        locked_until=row.locked_until,
    )
