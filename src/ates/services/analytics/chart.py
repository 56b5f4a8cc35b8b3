"""A bar chart as plain geometry, drawn by the page as server-rendered SVG.

Bars above the zero line are days the company earned money, bars below are days it paid
out more in rewards than it charged in fees. Pure: numbers in, rectangles out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ates.platform.money import format_cents


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # under the bar (may be empty when bars are too narrow for every label)
    title: str  # the tooltip: day and exact amount
    negative: bool


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    left: float
    right: float
    zero_y: float
    top_label: str
    bottom_label: str
    bars: tuple[Bar, ...]


def bar_chart(
    points: Sequence[tuple[str, int]],
    *,
    width: int = 720,
    height: int = 240,
    left: float = 70,
    top: float = 12,
    bottom: float = 28,
    max_labels: int = 16,
) -> BarChart:
    """One bar per ``(label, cents)`` point, scaled so the tallest bar fills the plot."""
    plot_height = height - top - bottom
    high = max([0, *(value for _, value in points)])
    low = min([0, *(value for _, value in points)])
    span = (high - low) or 1
    zero_y = top + plot_height * high / span
    slot = (width - left - 8) / max(len(points), 1)
    every = max(1, -(-len(points) // max_labels))  # ceil: at most max_labels labels
    bars = []
    for index, (label, value) in enumerate(points):
        size = plot_height * abs(value) / span
        bars.append(
            Bar(
                x=round(left + index * slot + slot * 0.15, 2),
                y=round(zero_y - size if value >= 0 else zero_y, 2),
                width=round(slot * 0.7, 2),
                height=round(size, 2),
                label=label if index % every == 0 else "",
                title=f"{label}: {format_cents(value)}",
                negative=value < 0,
            )
        )
    return BarChart(
        width=width,
        height=height,
        left=left,
        right=width - 8,
        zero_y=round(zero_y, 2),
        top_label=format_cents(high),
        bottom_label=format_cents(low),
        bars=tuple(bars),
    )
