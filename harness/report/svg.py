"""Line charts as inline SVG, drawn without matplotlib. Every run has a page of its own with four of them,
and a report of hundreds of runs draws them all: a matplotlib figure per run took about 0.75 s (300 runs,
four minutes), these take milliseconds. Text is escaped; the charts need nothing from outside the page."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from harness.core.units import format_count

WIDTH, HEIGHT = 520, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 44  # margins: tick labels left and below, the title above
MAX_POINTS = 400  # a series longer than this is thinned evenly (its first and last points kept)


@dataclass(frozen=True)
class Series:
    label: str
    xs: list[float]
    ys: list[float]
    color: str
    dots: bool = False  # a marker at each point (evaluations), else a line only
    hollow: tuple[bool, ...] = ()  # per point: an open marker (a predicted figure), else a filled one
    ringed: float | None = None  # the x of a point drawn with a ring around it (the best)


Point = tuple[float, float, bool]  # x, y, hollow


def _finite(series: Series) -> list[Point]:
    hollow = list(series.hollow) + [False] * (len(series.xs) - len(series.hollow))
    points = [
        (float(x), float(y), h)
        for x, y, h in zip(series.xs, series.ys, hollow, strict=False)
        if isinstance(x, int | float) and isinstance(y, int | float) and math.isfinite(x) and math.isfinite(y)
    ]
    if len(points) > MAX_POINTS:
        stride = len(points) / MAX_POINTS
        points = [points[int(i * stride)] for i in range(MAX_POINTS - 1)] + [points[-1]]
    return points


def _span(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = abs(lo) * 0.05 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.04
    return lo - pad, hi + pad


def _tick(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e5 else f"{value:.2e}"


@dataclass(frozen=True)
class _Frame:
    """The plot area and its scales: data coordinates to pixels (x on a log scale if asked)."""

    x0: float
    x1: float
    y0: float
    y1: float
    log_x: bool
    log_y: bool = False
    w: float = WIDTH - LEFT - RIGHT
    h: float = HEIGHT - TOP - BOTTOM

    @classmethod
    def around(cls, xs: list[float], ys: list[float], log_x: bool, log_y: bool = False) -> _Frame:
        xs = [math.log10(x) for x in xs] if log_x else xs
        ys = [math.log10(y) for y in ys] if log_y else ys
        return cls(*_span(xs), *_span(ys), log_x, log_y)

    def px(self, x: float) -> float:
        x = math.log10(x) if self.log_x else x
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * self.w

    def py(self, y: float) -> float:
        y = math.log10(y) if self.log_y else y
        return TOP + (1 - (y - self.y0) / (self.y1 - self.y0)) * self.h

    def axes(self, x_label: str, y_label: str) -> list[str]:
        w, h = self.w, self.h
        parts = [f'<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
        for frac in (0.0, 0.5, 1.0):
            xv, yv = self.x0 + frac * (self.x1 - self.x0), self.y0 + frac * (self.y1 - self.y0)
            x_text = format_count(10**xv) if self.log_x else _tick(xv)
            y_text = format_count(10**yv) if self.log_y else _tick(yv)
            x_tick = f'<text x="{LEFT + frac * w:.1f}" y="{TOP + h + 14}" text-anchor="middle">'
            parts.append(f"{x_tick}{x_text}</text>")
            y_at = TOP + (1 - frac) * h + 4
            parts.append(f'<text x="{LEFT - 4}" y="{y_at:.1f}" text-anchor="end">{y_text}</text>')
        parts.append(
            f'<text x="{LEFT + w / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_label)}</text>'
        )
        parts.append(
            f'<text x="12" y="{TOP + h / 2}" text-anchor="middle" transform="rotate(-90 12 {TOP + h / 2})">'
            f"{escape(y_label)}</text>"
        )
        return parts

    def hline(self, y: float) -> str:
        at = f"{self.py(y):.1f}"
        dashed = 'stroke="black" stroke-dasharray="4 3"'
        return f'<line x1="{LEFT}" x2="{LEFT + self.w}" y1="{at}" y2="{at}" {dashed}/>'

    def legend(self, entries: list[tuple[str, str, bool]]) -> list[str]:
        parts = []
        for i, (label, color, dashed) in enumerate(entries):
            ly, left = TOP + 14 + 14 * i, LEFT + self.w - 150
            dash = ' stroke-dasharray="4 3"' if dashed else ""
            parts.append(
                f'<line x1="{left}" x2="{left + 12}" y1="{ly - 7}" y2="{ly - 7}" '
                f'stroke="{escape(color)}" stroke-width="2"{dash}/>'
            )
            parts.append(f'<text x="{left + 16}" y="{ly - 4}">{escape(label)}</text>')
        return parts

    def series(self, s: Series, points: list[Point]) -> list[str]:
        color = escape(s.color)
        coords = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y, _ in points)
        parts = [f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.4"/>']
        if s.dots:
            for x, y, hollow in points:
                fill = f'fill="white" stroke="{color}" stroke-width="1.4"' if hollow else f'fill="{color}"'
                parts.append(f'<circle cx="{self.px(x):.1f}" cy="{self.py(y):.1f}" r="3" {fill}/>')
        for x, y, _ in points:
            if s.ringed is not None and x == s.ringed:
                parts.append(
                    f'<circle class="best" cx="{self.px(x):.1f}" cy="{self.py(y):.1f}" r="7" fill="none" '
                    f'stroke="{color}" stroke-width="2"/>'
                )
        return parts


def line_chart(
    title: str,
    x_label: str,
    y_label: str,
    series: list[Series],
    hline: float | None = None,
    *,
    log_x: bool = False,
    log_y: bool = False,
) -> str:
    """One chart: each series as a polyline (with dots if asked: filled, or hollow where a point says so, and
    a ring around a marked point), an optional dashed horizontal line (the Bayes floor), min / mid / max
    ticks on both axes, and a legend; an axis on a log scale if asked (its points must be positive). An
    empty chart says so."""

    def shown(x: float, y: float) -> bool:  # a log axis has no place for zero or below
        return (x > 0 or not log_x) and (y > 0 or not log_y)

    kept = [(s, [(x, y, h) for x, y, h in _finite(s) if shown(x, y)]) for s in series]
    drawn = [(s, p) for s, p in kept if p]
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-size="11" font-family="sans-serif">',  # inline: no namespace
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
    ]
    if not drawn:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(parts)
    floor = hline if hline is not None and math.isfinite(hline) else None
    xs = [x for _, p in drawn for x, _, _ in p]
    ys = [y for _, p in drawn for _, y, _ in p] + ([floor] if floor is not None else [])
    frame = _Frame.around(xs, ys, log_x, log_y)
    parts += frame.axes(x_label, y_label)
    legend = [(s.label, s.color, False) for s, _ in drawn]
    if floor is not None:
        parts.append(frame.hline(floor))
        legend.append(("Bayes floor", "black", True))
    parts += frame.legend(legend)
    for s, points in drawn:
        parts += frame.series(s, points)
    parts.append("</svg>")
    return "".join(parts)
