"""Rules about people and signing in, with no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from ates.platform.text import WHITESPACE

ROLES = ("admin", "manager", "accountant", "worker")
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
# Deliberately loose: one "@", something on each side, no white space or control
# character. Deliverability is not ours to judge; the notification service only prints it.
EMAIL_PART = rf"[^@{WHITESPACE}\x00-\x1f\x7f-\x9f]+"
_EMAIL = re.compile(f"{EMAIL_PART}@{EMAIL_PART}")


class PersonRuleError(ValueError):
    """A rule about people was broken; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PersonConflict(Exception):
    """A change that is well-formed but not allowed in the current state (HTTP 409)."""


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
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
    if len(password) > 1024:
        raise PersonRuleError("password", "at most 1024 characters")
    return password


def check_email(email: str) -> str:
    email = email.strip()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise PersonRuleError("email", "must look like name@example.com")
    return email


def check_full_name(full_name: str) -> str:
    full_name = " ".join(full_name.split())
    if not full_name:
        raise PersonRuleError("full_name", "must not be empty")
    if "\x00" in full_name:  # PostgreSQL text cannot hold it
        raise PersonRuleError("full_name", "must not contain a NUL character")
    if len(full_name) > 200:
        raise PersonRuleError("full_name", "at most 200 characters")
    return full_name


def default_email(username: str) -> str:
    return f"{username}@ates.local"


# --- changing a person ----------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What auth publishes about a person (the AccountUpdated payload, minus the id)."""

    username: str
    email: str
    full_name: str
    role: str
    active: bool


@dataclass(frozen=True)
class Change:
    """An admin's edit; ``None`` leaves a field as it is."""

    role: str | None = None
    full_name: str | None = None
    email: str | None = None
    active: bool | None = None


@dataclass(frozen=True)
class ChangePlan:
    after: Profile
    role_changed: bool
    deactivated: bool
    changed: bool


def plan_change(
    before: Profile, change: Change, *, other_active_admins: int, by_self: bool
) -> ChangePlan:
    """Validate an edit and say what it changes.

    Someone must always be able to administer people: the last active admin can be neither
    demoted nor deactivated, and nobody demotes or deactivates themselves (they would lock
    themselves out half-way through a page).
    """
    after = replace(
        before,
        role=check_role(change.role) if change.role is not None else before.role,
        full_name=(
            check_full_name(change.full_name) if change.full_name is not None else before.full_name
        ),
        email=check_email(change.email) if change.email is not None else before.email,
        active=change.active if change.active is not None else before.active,
    )
    loses_admin = (
        before.role == "admin" and before.active and not (after.role == "admin" and after.active)
    )
    if loses_admin and by_self:
        raise PersonConflict("you cannot remove your own admin rights or deactivate yourself")
    if loses_admin and other_active_admins == 0:
        raise PersonConflict("this is the last active admin: appoint another admin first")
    return ChangePlan(
        after=after,
        role_changed=after.role != before.role,
        deactivated=before.active and not after.active,
        changed=after != before,
    )


# --- signing in ------------------------------------------------------------------------

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=5)


@dataclass(frozen=True)
class Throttle:
    """Failed sign-ins for one username: after ``MAX_FAILURES`` within ``FAILURE_WINDOW``
    the username is locked for ``LOCKOUT`` (and again after every further failure)."""

    failures: int = 0
    window_started_at: datetime | None = None
    locked_until: datetime | None = None

    def locked_for(self, now: datetime) -> timedelta | None:
        if self.locked_until is not None and self.locked_until > now:
            return self.locked_until - now
        return None

    def after_failure(self, now: datetime) -> Throttle:
        window_open = (
            self.window_started_at is not None and now - self.window_started_at < FAILURE_WINDOW
        )
        failures = self.failures + 1 if window_open else 1
        started = self.window_started_at if window_open else now
        locked_until = now + LOCKOUT if failures >= MAX_FAILURES else None
        return Throttle(failures=failures, window_started_at=started, locked_until=locked_until)


def describe_wait(wait: timedelta) -> str:
    minutes = max(1, -(-int(wait.total_seconds()) // 60))  # round up: never say "0 minutes"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


# --- OAuth rules -----------------------------------------------------------------------

AUTHORIZATION_CODE_TTL = timedelta(seconds=60)
REFRESH_TOKEN_TTL = timedelta(days=1)
# A refresh-token family (one sign-in) ends after this, however often it is rotated.
REFRESH_FAMILY_MAX_AGE = timedelta(days=7)
# The auth service's own sign-in session ends after this even if used all the time.
SESSION_MAX_AGE = timedelta(hours=12)
LOOPBACK_HOSTS = ("127.0.0.1", "::1")


def redirect_uri_matches(registered: str, requested: str) -> bool:
    """Exact string match, except that a registered loopback URI without a port
    (``http://127.0.0.1/callback``) accepts any port: native apps listen wherever they can
    (RFC 8252 §7.3, RFC 9700 §2.1)."""
    if requested == registered:
        return True
    try:
        want, got = urlsplit(registered), urlsplit(requested)
        got_port = got.port
    except ValueError:
        return False
    loopback = want.scheme == "http" and want.hostname in LOOPBACK_HOSTS and want.port is None
    return (
        loopback
        and bool(got_port)
        and (got.scheme, got.hostname, got.path, got.query, got.fragment)
        == (want.scheme, want.hostname, want.path, want.query, want.fragment)
        and got.username is None
        and got.password is None
    )


def refresh_token_expiry(now: datetime, family_started_at: datetime) -> datetime:
    return min(now + REFRESH_TOKEN_TTL, family_started_at + REFRESH_FAMILY_MAX_AGE)


@dataclass(frozen=True)
class Identity:
    """Who an access token speaks for."""

    public_id: str
    username: str
    role: str
    full_name: str = ""


def access_token_claims(
    identity: Identity,
    *,
    issuer: str,
    audience: str,
    client_id: str,
    scope: str,
    issued_at: int,
    ttl_seconds: int,
    token_id: str,
) -> dict[str, object]:
    """The claims of an access token (DESIGN.md §4), per RFC 9068 where it has a word."""
    return {
        "iss": issuer,
        "aud": audience,
        "sub": identity.public_id,
        "role": identity.role,
        "preferred_username": identity.username,
        # OpenID's standard claim for a display name: the dashboards greet people by it
        **({"name": identity.full_name} if identity.full_name else {}),
        "client_id": client_id,
        "scope": scope,
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": token_id,
    }
