"""Which of two stories about a person a dashboard believes: the sign-in's, or its copy
of people's (``ates.platform.sessions.as_of``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from ates.platform.security import Principal
from ates.platform.sessions import as_of
from ates.platform.standing import Standing

SIGN_IN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BEFORE, AFTER = SIGN_IN - timedelta(minutes=5), SIGN_IN + timedelta(minutes=5)
MANAGER = Principal(public_id=uuid.uuid4(), role="manager", username="mona")


def test_a_person_the_copy_does_not_know_is_as_signed_in() -> None:
    assert as_of(MANAGER, None, SIGN_IN) == MANAGER


def test_a_role_changed_after_the_sign_in_counts() -> None:
    demoted = as_of(MANAGER, Standing("worker", AFTER, True, BEFORE), SIGN_IN)
    assert demoted is not None and demoted.role == "worker"


def test_a_role_older_than_the_sign_in_is_what_the_sign_in_already_knew() -> None:
    # promoted at auth just before signing in; the copy has not heard of it yet
    assert as_of(MANAGER, Standing("worker", BEFORE, True, BEFORE), SIGN_IN) == MANAGER


def test_deactivated_after_the_sign_in_ends_it() -> None:
    assert as_of(MANAGER, Standing("manager", BEFORE, False, AFTER), SIGN_IN) is None
    assert as_of(MANAGER, Standing("manager", None, False, None), SIGN_IN) is None


def test_reactivated_before_the_sign_in_while_the_copy_still_says_inactive() -> None:
    assert as_of(MANAGER, Standing("manager", BEFORE, False, BEFORE), SIGN_IN) == MANAGER
