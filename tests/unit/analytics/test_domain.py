"""The pure rules of analytics: periods in a business time zone, ranking, merging."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ates.platform.events.ordering import stamp
from ates.services.analytics.domain import (
    BUCKET_SECONDS,
    Completion,
    Period,
    PersonFacts,
    PersonState,
    bucket_of,
    counts_as_worker,
    day_label,
    earnings_effect,
    local_date,
    local_midnight,
    merge_person,
    month_period,
    most_expensive,
    parse_instant,
    period_label,
    week_period,
    whole_dollars,
)

NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30
KATHMANDU = ZoneInfo("Asia/Kathmandu")  # +05:45


def test_a_local_day_is_its_utc_interval_also_across_dst() -> None:
    # 2024-03-10: New York springs forward, the day has 23 hours
    start, end = Period(date(2024, 3, 10), date(2024, 3, 10)).utc_bounds(NEW_YORK)
    assert start == datetime(2024, 3, 10, 5, tzinfo=UTC)
    assert end == datetime(2024, 3, 11, 4, tzinfo=UTC)
    # 2024-11-03: falls back, 25 hours
    start, end = Period(date(2024, 11, 3), date(2024, 11, 3)).utc_bounds(NEW_YORK)
    assert end - start == timedelta(hours=25)


@pytest.mark.parametrize("zone", [NEW_YORK, KOLKATA, KATHMANDU, ZoneInfo("UTC")])
def test_every_local_midnight_starts_a_bucket(zone: ZoneInfo) -> None:
    day = date(2024, 1, 1)
    for offset in range(0, 366, 7):
        midnight = local_midnight(day + timedelta(days=offset), zone)
        assert int(midnight.timestamp()) % BUCKET_SECONDS == 0


@given(
    moment=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    zone=st.sampled_from([NEW_YORK, KOLKATA, KATHMANDU, ZoneInfo("Pacific/Chatham")]),
)
def test_an_instant_falls_in_the_buckets_of_its_local_day(moment: datetime, zone: ZoneInfo) -> None:
    day = local_date(moment, zone)
    lo, hi = Period(day, day).buckets(zone)
    assert lo <= bucket_of(moment) < hi
    _, previous_end = Period(day - timedelta(days=1), day - timedelta(days=1)).buckets(zone)
    assert previous_end == lo  # days tile the time line: no gap, no overlap


def test_weeks_are_iso_weeks_and_months_calendar_months() -> None:
    assert week_period(date(2024, 3, 10)) == Period(date(2024, 3, 4), date(2024, 3, 10))  # Sun
    assert week_period(date(2024, 3, 11)) == Period(date(2024, 3, 11), date(2024, 3, 17))  # Mon
    assert week_period(date(2024, 12, 31)) == Period(date(2024, 12, 30), date(2025, 1, 5))
    assert month_period(date(2024, 2, 14)) == Period(date(2024, 2, 1), date(2024, 2, 29))
    assert month_period(date(2023, 12, 31)) == Period(date(2023, 12, 1), date(2023, 12, 31))
    assert Period(date(2024, 2, 27), date(2024, 3, 1)).days() == [
        date(2024, 2, 27),
        date(2024, 2, 28),
        date(2024, 2, 29),
        date(2024, 3, 1),
    ]
    with pytest.raises(ValueError):
        Period(date(2024, 3, 2), date(2024, 3, 1))


def test_most_expensive_is_the_highest_reward_and_ties_do_not_depend_on_order() -> None:
    at = datetime(2024, 3, 3, 12, tzinfo=UTC)
    a = Completion("a", 2800, at)
    b = Completion("b", 3800, at + timedelta(hours=1))
    c = Completion("c", 3800, at)  # same reward as b, completed earlier: c ranks first
    d = Completion("0", 3800, at)  # same reward and time as c, smaller id: d ranks first
    assert most_expensive([a, b]) == b
    assert most_expensive([a, b, c]) == c
    items = [a, b, c, d]
    for _ in range(10):
        random.shuffle(items)
        assert most_expensive(items) == d
    assert most_expensive([]) is None


def test_earnings_count_fees_and_rewards_but_not_payouts() -> None:
    assert earnings_effect("assign_fee", 1234, 0) == (1234, 0)
    assert earnings_effect("reward", 0, 3000) == (0, 3000)
    assert earnings_effect("payout", 5000, 0) == (0, 0)


def test_latest_person_fact_wins_whatever_the_arrival_order() -> None:
    t = datetime(2024, 3, 3, 12, tzinfo=UTC)
    created = PersonFacts(stamp(t, "e1"), "polly", "p@x", "Polly", role="worker", active=True)
    promoted = PersonFacts(stamp(t + timedelta(minutes=1), "e2"), role="manager")
    renamed = PersonFacts(
        stamp(t + timedelta(minutes=2), "e3"), "polly", "p@x", "Polly P.", "manager", True
    )
    gone = PersonFacts(stamp(t + timedelta(minutes=3), "e4"), active=False)
    facts = [created, promoted, renamed, gone]
    expected = None
    for _ in range(24):
        state = PersonState()
        for fact in facts:
            state = merge_person(state, fact)
        summary = (state.username, state.full_name, state.role, state.active)
        expected = expected or summary
        assert summary == expected == ("polly", "Polly P.", "manager", False)
        random.shuffle(facts)


def test_parse_instant_needs_a_zone() -> None:
    assert parse_instant("2024-03-03T10:00:00Z") == datetime(2024, 3, 3, 10, tzinfo=UTC)
    assert parse_instant("2024-03-03T05:00:00-05:00") == datetime(2024, 3, 3, 10, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_instant("2024-03-03T10:00:00")
    with pytest.raises(ValueError):
        bucket_of(datetime(2024, 3, 3))


def test_who_counts_as_a_worker() -> None:
    assert counts_as_worker("worker")
    assert counts_as_worker(None)  # known to billing before auth's event arrived
    assert not counts_as_worker("manager")


def test_labels_read_like_the_design() -> None:
    assert day_label(date(2024, 3, 3)) == "03.03"
    assert period_label(Period(date(2024, 3, 1), date(2024, 3, 3))) == "01\u201303 March"
    assert period_label(Period(date(2024, 3, 3), date(2024, 3, 3))) == "03 March"
    assert (
        period_label(Period(date(2024, 2, 27), date(2024, 3, 3))) == "27 February \u2013 03 March"
    )
    assert (
        period_label(Period(date(2023, 12, 30), date(2024, 1, 2)))
        == "30 December 2023 \u2013 02 January 2024"
    )
    assert whole_dollars(2800) == "28 $"
    assert whole_dollars(2850) == "28.50 $"
    assert whole_dollars(-105) == "-1.05 $"
