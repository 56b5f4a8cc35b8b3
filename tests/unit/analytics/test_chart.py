"""The bar chart's geometry: bars stand on the zero line, up for gains, down for losses."""

from __future__ import annotations

import pytest

from ates.services.analytics.chart import bar_chart


def test_bars_scale_to_the_plot_and_hang_below_zero_when_negative() -> None:
    chart = bar_chart([("01.03", 3000), ("02.03", -1000), ("03.03", 0)], height=240)
    up, down, flat = chart.bars
    plot = 240 - 12 - 28
    assert chart.zero_y == pytest.approx(12 + plot * 3000 / 4000)
    assert up.y + up.height == pytest.approx(chart.zero_y)
    assert up.height == pytest.approx(plot * 3000 / 4000)
    assert down.y == pytest.approx(chart.zero_y)
    assert down.height == pytest.approx(plot * 1000 / 4000)
    assert down.negative and not up.negative
    assert flat.height == 0
    assert up.x < down.x < flat.x
    assert (chart.top_label, chart.bottom_label) == ("30.00 $", "-10.00 $")
    assert up.title == "01.03: 30.00 $"


def test_an_empty_or_flat_chart_draws_without_dividing_by_zero() -> None:
    assert bar_chart([]).bars == ()
    assert all(bar.height == 0 for bar in bar_chart([("01.03", 0), ("02.03", 0)]).bars)


def test_long_ranges_label_only_some_bars() -> None:
    chart = bar_chart([(f"{day:02d}.01", day) for day in range(1, 32)], max_labels=8)
    labelled = [bar.label for bar in chart.bars if bar.label]
    assert 1 < len(labelled) <= 8
    assert labelled[0] == "01.01"
