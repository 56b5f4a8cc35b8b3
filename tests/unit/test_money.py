import pytest

from ates.platform.money import format_cents


@pytest.mark.parametrize(
    ("cents", "text"),
    [(0, "0.00 $"), (5, "0.05 $"), (1234, "12.34 $"), (-1234, "-12.34 $"), (-5, "-0.05 $")],
)
def test_format_cents(cents: int, text: str) -> None:
    assert format_cents(cents) == text
