"""The one rule every service's copy of people follows (``ates.platform.events.ordering``)."""

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from ates.platform.events import Event
from ates.platform.events.ordering import NEVER, event_stamp, is_newer, stamp, stamp_time

T = datetime(2026, 3, 3, 12, tzinfo=UTC)


def test_an_older_fact_never_replaces_a_newer_one() -> None:
    assert is_newer(stamp(T, "a"), None)
    assert is_newer(stamp(T, "a"), NEVER)
    assert is_newer(stamp(T, "z"), stamp(T - timedelta(microseconds=1), "a"))
    assert not is_newer(stamp(T - timedelta(seconds=1), "z"), stamp(T, "a"))
    assert not is_newer(stamp(T, "a"), stamp(T, "a"))  # the same fact again changes nothing


def test_stamps_sort_by_time_then_tiebreak() -> None:
    assert stamp(T, "b") < stamp(T + timedelta(microseconds=1), "a")
    assert stamp(T, "a") < stamp(T, "b")
    # fixed width, so a later second never sorts before an earlier one with micros
    assert stamp(T.replace(microsecond=999999), "z") < stamp(T + timedelta(seconds=1), "a")
    assert stamp(T.astimezone(ZoneInfo("America/New_York")), "a") == stamp(T, "a")
    assert stamp_time(stamp(T, "a")) == T and stamp_time(NEVER) is None


def _role_changed(role: str, at: datetime) -> Event:
    data = {"public_id": "p", "old_role": "worker", "new_role": role}
    return Event("AccountRoleChanged", 1, data, "auth", event_time=at)


def _copy(arrivals: tuple[Event, ...]) -> str | None:
    """A service's copy of a role, kept by the rule, after events arrived in this order."""
    role, known = None, NEVER
    for event in arrivals:
        if is_newer(event_stamp(event), known):
            role, known = event.data["new_role"], event_stamp(event)
    return role


def test_a_tie_on_the_event_time_is_broken_the_same_way_whatever_the_arrival_order() -> None:
    # Three changes stamped with the same instant: every arrival order (each service may
    # see a different one) keeps the same role — the one of the greatest event id.
    events = [_role_changed(role, T) for role in ("manager", "accountant", "worker")]
    winner = max(events, key=lambda event: str(event.event_id)).data["new_role"]
    assert {_copy(order) for order in itertools.permutations(events)} == {winner}


@given(
    st.lists(
        st.tuples(st.datetimes(timezones=st.just(UTC)), st.uuids()),
        min_size=2,
        max_size=2,
    )
)
def test_the_text_order_is_the_order_of_time_then_event_id(
    pairs: list[tuple[datetime, uuid.UUID]],
) -> None:
    (t1, id1), (t2, id2) = pairs
    by_text = stamp(t1, str(id1)) < stamp(t2, str(id2))
    assert by_text == ((t1, str(id1)) < (t2, str(id2)))
