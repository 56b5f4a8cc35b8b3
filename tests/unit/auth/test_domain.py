"""Rules about people and signing in (``ates.services.auth.domain``), no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ates.services.auth import domain
from ates.services.auth.domain import (
    Change,
    PersonConflict,
    PersonRuleError,
    Profile,
    Throttle,
    plan_change,
    redirect_uri_matches,
)

T0 = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("username", ["polly", "p0", "kesha.popug", "rio_2", "a-b"])
def test_good_usernames(username: str) -> None:
    assert domain.check_username(username) == username


@pytest.mark.parametrize("username", ["", "p", "Polly", "polly parrot", "-polly", "x" * 65])
def test_bad_usernames_name_the_field(username: str) -> None:
    with pytest.raises(PersonRuleError) as raised:
        domain.check_username(username)
    assert raised.value.field == "username"


def test_other_field_rules() -> None:
    for check, value, field in (
        (domain.check_role, "boss", "role"),
        (domain.check_password, "short", "password"),
        (domain.check_email, "no-at-sign", "email"),
        (domain.check_email, "two@@example.com", "email"),
        (domain.check_full_name, "   ", "full_name"),
        # PostgreSQL cannot store a NUL: refused with a 422, not a 500
        (domain.check_full_name, "Polly\x00", "full_name"),
        (domain.check_email, "p\x00lly@example.com", "email"),
        (domain.check_email, "polly@exa mple.com", "email"),
    ):
        with pytest.raises(PersonRuleError) as raised:
            check(value)
        assert raised.value.field == field
    assert domain.check_full_name("  Polly   Parrot ") == "Polly Parrot"
    assert domain.check_email(" polly@example.com ") == "polly@example.com"


WORKER = Profile(username="polly", email="p@x.io", full_name="Polly", role="worker", active=True)
ADMIN = Profile(username="ada", email="a@x.io", full_name="Ada", role="admin", active=True)


def test_a_plan_says_what_changed() -> None:
    plan = plan_change(WORKER, Change(role="manager"), other_active_admins=1, by_self=False)
    assert (plan.role_changed, plan.deactivated, plan.changed) == (True, False, True)
    assert plan.after.role == "manager"

    plan = plan_change(WORKER, Change(active=False), other_active_admins=1, by_self=False)
    assert (plan.role_changed, plan.deactivated, plan.changed) == (False, True, True)

    plan = plan_change(WORKER, Change(role="worker"), other_active_admins=1, by_self=False)
    assert not plan.changed


def test_the_last_admin_stays_an_admin() -> None:
    for change in (Change(role="manager"), Change(active=False)):
        with pytest.raises(PersonConflict, match="last active admin"):
            plan_change(ADMIN, change, other_active_admins=0, by_self=False)
        with pytest.raises(PersonConflict, match="your own"):
            plan_change(ADMIN, change, other_active_admins=3, by_self=True)
        assert plan_change(ADMIN, change, other_active_admins=1, by_self=False).changed
    # renaming oneself is fine
    assert plan_change(ADMIN, Change(full_name="Ada L."), other_active_admins=0, by_self=True)


def test_a_bad_value_in_a_change_names_the_field() -> None:
    with pytest.raises(PersonRuleError) as raised:
        plan_change(WORKER, Change(role="popug"), other_active_admins=1, by_self=False)
    assert raised.value.field == "role"


def test_failures_lock_a_username_after_five_within_the_window() -> None:
    throttle = Throttle()
    for minute in range(4):
        throttle = throttle.after_failure(T0 + timedelta(minutes=minute))
        assert throttle.locked_for(T0 + timedelta(minutes=minute)) is None
    throttle = throttle.after_failure(T0 + timedelta(minutes=4))
    assert throttle.locked_for(T0 + timedelta(minutes=4)) == domain.LOCKOUT
    assert throttle.locked_for(T0 + timedelta(minutes=4) + domain.LOCKOUT) is None
    # one more failure after the lockout locks again at once
    again = throttle.after_failure(T0 + timedelta(minutes=10))
    assert again.locked_for(T0 + timedelta(minutes=10)) == domain.LOCKOUT


def test_failures_outside_the_window_start_a_new_count() -> None:
    throttle = Throttle()
    for _ in range(4):
        throttle = throttle.after_failure(T0)
    later = T0 + domain.FAILURE_WINDOW + timedelta(seconds=1)
    throttle = throttle.after_failure(later)
    assert throttle.failures == 1
    assert throttle.locked_for(later) is None


def test_waits_are_said_in_whole_minutes() -> None:
    assert domain.describe_wait(timedelta(seconds=5)) == "1 minute"
    assert domain.describe_wait(timedelta(seconds=61)) == "2 minutes"


@pytest.mark.parametrize(
    ("registered", "requested", "ok"),
    [
        ("http://127.0.0.1:8001/oauth/callback", "http://127.0.0.1:8001/oauth/callback", True),
        ("http://127.0.0.1:8001/oauth/callback", "http://127.0.0.1:8001/oauth/callback/", False),
        ("http://127.0.0.1:8001/oauth/callback", "http://127.0.0.1:8009/oauth/callback", False),
        ("http://127.0.0.1:8001/oauth/callback", "http://127.0.0.1:8001/oauth/callback?x", False),
        ("https://ates.example/cb", "https://ates.example/cb#frag", False),
        ("http://127.0.0.1/callback", "http://127.0.0.1:53682/callback", True),
        ("http://127.0.0.1/callback", "http://127.0.0.1/callback", True),
        ("http://127.0.0.1/callback", "http://127.0.0.1:53682/other", False),
        ("http://127.0.0.1/callback", "http://localhost:53682/callback", False),
        ("http://127.0.0.1/callback", "https://127.0.0.1:53682/callback", False),
        ("http://127.0.0.1/callback", "http://user@127.0.0.1:53682/callback", False),
        ("http://127.0.0.1/callback", "http://127.0.0.1:99999/callback", False),
        ("http://127.0.0.1/callback", "http://127.0.0.1:0/callback", False),
        ("http://127.0.0.1/callback", "http://127.0.0.1:53682/callback?evil=1", False),
        ("http://[::1]/callback", "http://[::1]:53682/callback", True),
    ],
)
def test_redirect_uris_match_exactly_except_a_loopback_port(
    registered: str, requested: str, ok: bool
) -> None:
    assert redirect_uri_matches(registered, requested) is ok


@given(st.text())
def test_no_string_but_the_loopback_form_matches_a_loopback_registration(requested: str) -> None:
    if redirect_uri_matches("http://127.0.0.1/callback", requested):
        assert requested == "http://127.0.0.1/callback" or (
            requested.startswith("http://127.0.0.1:") and requested.endswith("/callback")
        )


def test_a_refresh_token_family_has_an_absolute_end() -> None:
    assert domain.refresh_token_expiry(T0, T0) == T0 + domain.REFRESH_TOKEN_TTL
    late = T0 + domain.REFRESH_FAMILY_MAX_AGE - timedelta(hours=1)
    assert domain.refresh_token_expiry(late, T0) == T0 + domain.REFRESH_FAMILY_MAX_AGE


def _claims_of(identity: domain.Identity) -> dict[str, object]:
    """The claims of an access token of ``identity`` issued to tasks at t=1000 for 300 s."""
    return domain.access_token_claims(
        identity,
        issuer="http://auth",
        audience="ates-api",
        client_id="tasks",
        scope="openid profile",
        issued_at=1000,
        ttl_seconds=300,
        token_id="t-1",
    )


def test_access_token_claims_are_the_contract() -> None:
    claims = _claims_of(domain.Identity(public_id="p-1", username="polly", role="worker"))
    assert claims == {
        "iss": "http://auth",
        "aud": "ates-api",
        "sub": "p-1",
        "role": "worker",
        "preferred_username": "polly",
        "client_id": "tasks",
        "scope": "openid profile",
        "iat": 1000,
        "exp": 1300,
        "jti": "t-1",
    }


def test_access_tokens_name_the_person_for_the_pages() -> None:
    claims = _claims_of(
        domain.Identity(public_id="p-1", username="polly", role="worker", full_name="Polly P")
    )
    assert claims["name"] == "Polly P"
