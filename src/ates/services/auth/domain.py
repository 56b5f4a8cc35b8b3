"""Rules about people, with no I/O."""

from __future__ import annotations

import re

ROLES = ("admin", "manager", "accountant", "worker")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class PersonRuleError(ValueError):
    """A rule about people was broken; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise PersonRuleError(
            "username", "2-64 characters: lowercase letters, digits, '.', '_' or '-'"
        )
    return username


def check_role(role: str) -> str:
    if role not in ROLES:
        raise PersonRuleError("role", f"must be one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < 8:
        raise PersonRuleError("password", "at least 8 characters")
    return password


def default_email(username: str) -> str:
    return f"{username}@ates.local"
