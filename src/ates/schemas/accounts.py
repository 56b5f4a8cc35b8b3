"""The typed payloads of the ``accounts`` domain (auth's events), one class per schema
version in ``accounts/<EventName>/<version>.json`` (see ``ates.platform.events.payload``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

from ates.platform.events.payload import Payload

Role = Literal["admin", "manager", "accountant", "worker"]
ROLES: tuple[Role, ...] = get_args(Role)


def as_role(value: str) -> Role:
    """A role as stored (``str``) as the payloads' type; ``ValueError`` if it names none."""
    for role in ROLES:
        if value == role:
            return role
    raise ValueError(f"not a role: {value!r}")


@dataclass(frozen=True, slots=True)
class AccountCreated(Payload):
    event_name: ClassVar[str] = "AccountCreated"
    event_version: ClassVar[int] = 1

    public_id: str
    username: str
    email: str
    full_name: str
    role: Role


@dataclass(frozen=True, slots=True)
class AccountUpdated(Payload):
    """The full profile after the change."""

    event_name: ClassVar[str] = "AccountUpdated"
    event_version: ClassVar[int] = 1

    public_id: str
    username: str
    email: str
    full_name: str
    role: Role
    active: bool


@dataclass(frozen=True, slots=True)
class AccountRoleChanged(Payload):
    event_name: ClassVar[str] = "AccountRoleChanged"
    event_version: ClassVar[int] = 1

    public_id: str
    old_role: Role
    new_role: Role


@dataclass(frozen=True, slots=True)
class AccountDeactivated(Payload):
    event_name: ClassVar[str] = "AccountDeactivated"
    event_version: ClassVar[int] = 1

    public_id: str


@dataclass(frozen=True, slots=True)
class AccountPasswordReset(Payload):
    """``reset_by_public_id`` is None when an operator reset it from the command line."""

    event_name: ClassVar[str] = "AccountPasswordReset"
    event_version: ClassVar[int] = 1

    public_id: str
    reset_by_public_id: str | None


PAYLOADS: tuple[type[Payload], ...] = (
    AccountCreated,
    AccountUpdated,
    AccountRoleChanged,
    AccountDeactivated,
    AccountPasswordReset,
)
