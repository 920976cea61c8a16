"""Server-rendered SVG charts: geometry computed here, drawn by templates/supervise/_bar_chart.html.

Horizontal bars read well with long labels ("voice → chat") and need no script.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LABEL_WIDTH = 150
BAR_AREA = 320
VALUE_WIDTH = 60
ROW_HEIGHT = 26
BAR_HEIGHT = 18


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    display: str
    y: int
    width: float
    text_y: int


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: list[Bar]
    width: int
    height: int
    bar_x: int
    value_x: float

    @property
    def empty(self) -> bool:
        return not any(bar.value for bar in self.bars)


def bar_chart(*, title: str, rows: Iterable[tuple[str, float]], unit: str = "") -> BarChart:
    items = list(rows)
    peak = max((value for _, value in items), default=0) or 1
    bars = []
    for index, (label, value) in enumerate(items):
        y = index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) // 2
        number = f"{value:g}" if isinstance(value, float) else str(value)
        bars.append(
            Bar(
                label=label,
                value=value,
                display=f"{number}{unit}",
                y=y,
                # A sliver for zero keeps each row visible without claiming a count.
                width=max(BAR_AREA * value / peak, 1.0),
                text_y=y + BAR_HEIGHT - 5,
            )
        )
    return BarChart(
        title=title,
        bars=bars,
        width=LABEL_WIDTH + BAR_AREA + VALUE_WIDTH,
        height=max(len(bars), 1) * ROW_HEIGHT,
        bar_x=LABEL_WIDTH,
        value_x=LABEL_WIDTH + BAR_AREA + 6,
    )


STRIP_LANE_LABEL = 170
STRIP_PLOT = 560
STRIP_LANE = 28


@dataclass(frozen=True)
class StripDot:
    x: float
    y: int
    channel: str
    kind: str
    title: str
    anchor: str


@dataclass(frozen=True)
class StripLane:
    label: str
    y: int
    text_y: int


@dataclass(frozen=True)
class StripChart:
    lanes: list[StripLane]
    dots: list[StripDot]
    width: int
    height: int
    plot_x: int
    plot_end: int


def timeline_strip(*, points: Iterable[tuple[float, str, str, str, str, str]]) -> StripChart:
    """One lane per actor, time left to right: who acted when, coloured by channel.

    points: (seconds since start, lane, channel, kind, title, anchor id).
    """
    items = list(points)
    lanes: dict[str, int] = {}
    for _, lane, *_rest in items:
        lanes.setdefault(lane, len(lanes))
    span = max((seconds for seconds, *_ in items), default=0.0) or 1.0
    dots = [
        StripDot(
            x=round(STRIP_LANE_LABEL + 8 + (STRIP_PLOT - 16) * seconds / span, 1),
            y=lanes[lane] * STRIP_LANE + STRIP_LANE // 2,
            channel=channel or "none",
            kind=kind,
            title=title,
            anchor=anchor,
        )
        for seconds, lane, channel, kind, title, anchor in items
    ]
    return StripChart(
        lanes=[
            StripLane(label=name, y=index * STRIP_LANE, text_y=index * STRIP_LANE + 18)
            for name, index in lanes.items()
        ],
        dots=dots,
        width=STRIP_LANE_LABEL + STRIP_PLOT,
        height=max(len(lanes), 1) * STRIP_LANE,
        plot_x=STRIP_LANE_LABEL,
        plot_end=STRIP_LANE_LABEL + STRIP_PLOT,
    )
