from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from ates.platform.dates import format_clock, format_day, format_moment


def test_one_format_for_days_and_times_in_the_business_zone() -> None:
    assert format_day(date(2026, 11, 26)) == "26.11.2026"
    moment = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    tokyo = ZoneInfo("Asia/Tokyo")
    assert format_moment(moment, tokyo) == "27.11.2026 08:30"  # the next day there
    assert format_clock(moment, tokyo) == "08:30"
    assert format_moment(moment, ZoneInfo("UTC")) == "26.11.2026 23:30"


def test_a_naive_time_is_a_bug_not_a_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_moment(datetime(2026, 11, 26, 12, 0), ZoneInfo("UTC"))
