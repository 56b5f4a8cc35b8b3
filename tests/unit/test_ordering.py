from datetime import UTC, datetime, timedelta

from ates.platform.events.ordering import is_newer


def test_an_older_fact_never_replaces_a_newer_one() -> None:
    now = datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert is_newer(now, None)
    assert is_newer(now, now - timedelta(microseconds=1))
    assert is_newer(now, now)  # same instant: the later arrival wins
    assert not is_newer(now - timedelta(seconds=1), now)
