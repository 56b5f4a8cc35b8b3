"""Billing's rules, without any I/O."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ates.services.billing import domain
from ates.services.billing.domain import (
    CASH,
    COMPANY,
    DayRuleError,
    LedgerError,
    Leg,
    Posting,
    Price,
    Reason,
)

WORKER = "6f1c2c9e-1111-4a4a-9a9a-000000000001"


@given(st.integers(0, 2**32))
def test_prices_are_whole_cents_inside_their_ranges(seed: int) -> None:
    price = domain.draw_price(random.Random(seed))
    assert 1000 <= price.assign_fee_cents <= 2000
    assert 2000 <= price.reward_cents <= 4000


def test_a_seeded_source_gives_the_same_prices() -> None:
    first = [domain.draw_price(random.Random(42)) for _ in range(3)]
    assert first == [domain.draw_price(random.Random(42)) for _ in range(3)]


def test_prices_reach_both_ends_of_their_ranges() -> None:
    rng = random.Random(1)
    prices = [domain.draw_price(rng) for _ in range(20_000)]
    fees = {p.assign_fee_cents for p in prices}
    rewards = {p.reward_cents for p in prices}
    assert {1000, 2000} <= fees and {2000, 4000} <= rewards


@pytest.mark.parametrize("amount", [0, -5, 12.5, "100", True, None])
def test_an_amount_must_be_positive_integer_cents(amount: object) -> None:
    with pytest.raises(LedgerError, match="amount_cents"):
        domain.check_amount(amount)


@pytest.mark.parametrize(
    ("fee", "reward", "message"),
    [
        (1500, -1, "reward_cents must be positive"),
        (15.5, 3000, "assign_fee_cents must be an integer"),
        (999, 3000, "assign_fee_cents must be within 1000..2000, got 999"),
        (1500, 4001, "reward_cents must be within 2000..4000, got 4001"),
    ],
)
def test_a_price_refuses_a_bad_amount(fee: int, reward: int, message: str) -> None:
    with pytest.raises(LedgerError, match=message):
        Price(assign_fee_cents=fee, reward_cents=reward)


@pytest.mark.parametrize(
    ("make", "debit", "credit"),
    [
        (lambda p: domain.fee_posting(WORKER, p), 1234, 0),
        (lambda p: domain.reward_posting(WORKER, p), 0, 3210),
    ],
)
def test_postings_balance_and_read_from_the_workers_side(
    make: object, debit: int, credit: int
) -> None:
    posting = make(Price(1234, 3210))  # type: ignore[operator]
    assert sum(leg.amount_cents for leg in posting.legs) == 0
    assert {leg.account for leg in posting.legs} == {WORKER, COMPANY}
    assert (posting.debit_cents, posting.credit_cents) == (debit, credit)


def test_a_payout_moves_money_to_cash() -> None:
    posting = domain.payout_posting(WORKER, 500)
    assert posting.legs == (Leg(WORKER, -500), Leg(CASH, 500))
    assert (posting.debit_cents, posting.credit_cents) == (500, 0)


@pytest.mark.parametrize(
    ("legs", "message"),
    [
        ((Leg(WORKER, -5), Leg(COMPANY, 4)), "sum to -1"),
        ((Leg(WORKER, 0), Leg(COMPANY, 0)), "zero"),
        ((Leg(WORKER, 5),), "two legs"),
        ((Leg(WORKER, -1.5), Leg(COMPANY, 1.5)), "integer"),  # type: ignore[arg-type]
    ],
)
def test_an_unbalanced_posting_is_refused(legs: tuple[Leg, ...], message: str) -> None:
    with pytest.raises(LedgerError, match=message):
        Posting(domain.Kind.ASSIGN_FEE, WORKER, 5, legs)


def test_payouts_only_for_positive_balances() -> None:
    assert [domain.payout_due(b) for b in (-300, 0, 1, 4200)] == [0, 0, 1, 4200]


def test_business_dates_follow_the_zone_across_midnight() -> None:
    moment = datetime(2026, 3, 3, 23, 30, tzinfo=UTC)
    assert domain.business_date(moment, UTC) == date(2026, 3, 3)
    assert domain.business_date(moment, ZoneInfo("Europe/Berlin")) == date(2026, 3, 4)
    assert domain.business_date(moment, ZoneInfo("America/New_York")) == date(2026, 3, 3)
    with pytest.raises(ValueError, match="time zone"):
        domain.business_date(datetime(2026, 3, 3), UTC)


def test_a_movement_for_a_closed_day_goes_to_the_first_open_day() -> None:
    closed = date(2026, 3, 3)
    assert domain.booking_date(date(2026, 3, 4), closed) == date(2026, 3, 4)
    assert domain.booking_date(date(2026, 3, 3), closed) == date(2026, 3, 4)
    assert domain.booking_date(date(2026, 2, 1), closed) == date(2026, 3, 4)
    assert domain.booking_date(date(2026, 2, 1), None) == date(2026, 2, 1)


def test_days_close_in_order_and_never_in_the_future() -> None:
    today = date(2026, 3, 10)
    with pytest.raises(DayRuleError, match="2026-03-11 is in the future"):
        domain.days_to_close(
            today + timedelta(days=1), today=today, closed_through=None, earliest_open=None
        )
    assert domain.days_to_close(
        today, today=today, closed_through=date(2026, 3, 7), earliest_open=None
    ) == [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    assert (
        domain.days_to_close(
            date(2026, 3, 6), today=today, closed_through=date(2026, 3, 7), earliest_open=None
        )
        == []
    )
    # nothing closed yet: from the first day with movements
    assert domain.days_to_close(
        date(2026, 3, 9), today=today, closed_through=None, earliest_open=date(2026, 3, 8)
    ) == [date(2026, 3, 8), date(2026, 3, 9)]
    assert domain.days_to_close(
        date(2026, 3, 9), today=today, closed_through=None, earliest_open=None
    ) == [date(2026, 3, 9)]


def test_descriptions_name_the_task_and_why() -> None:
    day = date(2026, 3, 3)
    label = domain.task_label("Sharpen the beak", "POPUG-42", "t-1")
    assert (
        domain.describe(Reason.ASSIGNED, amount_cents=1234, business_date=day, task=label)
        == "assigned: [POPUG-42] Sharpen the beak, fee 12.34 $"
    )
    assert (
        domain.describe(Reason.SHUFFLED, amount_cents=1234, business_date=day, task=label)
        == "reassigned by shuffle: [POPUG-42] Sharpen the beak, fee 12.34 $"
    )
    assert (
        domain.describe(
            Reason.COMPLETED,
            amount_cents=3210,
            business_date=day,
            task=domain.task_label("Sleep", None, "t-2"),
        )
        == "completed: Sleep, reward 32.10 $"
    )
    assert (
        domain.describe(Reason.PAID_OUT, amount_cents=4500, business_date=day)
        == "paid out 45.00 $ for 2026-03-03"
    )
    late = domain.describe(
        Reason.ASSIGNED,
        amount_cents=1000,
        business_date=day,
        task=label,
        booked_late_from=date(2026, 3, 2),
    )
    assert late.endswith("(happened on 2026-03-02, a day already closed; booked on 2026-03-03)")
    assert "title not received yet" in domain.task_label(None, None, "t-3")


def test_management_earnings_is_the_course_formula() -> None:
    fees, rewards = [1000, 1500, 2000], [3000]
    course = (sum(rewards) + sum(-f for f in fees)) * -1
    assert domain.management_earnings(sum(fees), sum(rewards)) == course == 1500


def test_day_range_lists_newest_first() -> None:
    assert domain.day_range(date(2026, 3, 2), 3) == [
        date(2026, 3, 2),
        date(2026, 3, 1),
        date(2026, 2, 28),
    ]


def test_the_first_day_that_can_be_closed() -> None:
    today = date(2026, 11, 26)
    first = domain.first_closable
    assert first(closed_through=None, earliest_movement=None, today=today) == today
    assert first(closed_through=None, earliest_movement=date(2026, 11, 20), today=today) == date(
        2026, 11, 20
    )
    assert first(closed_through=date(2026, 11, 22), earliest_movement=None, today=today) == date(
        2026, 11, 23
    )
    assert first(closed_through=today, earliest_movement=None, today=today) is None


def test_descriptions_write_days_as_the_reader_does() -> None:
    text = domain.describe(
        domain.Reason.PAID_OUT,
        amount_cents=1234,
        business_date=date(2026, 3, 3),
        booked_late_from=date(2026, 3, 2),
        show_day=lambda day: day.strftime("%d.%m.%Y"),
    )
    assert text == (
        "paid out 12.34 $ for 03.03.2026 (happened on 02.03.2026, a day already closed; "
        "booked on 03.03.2026)"
    )
