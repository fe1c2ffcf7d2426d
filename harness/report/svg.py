"""Line charts as inline SVG, drawn without matplotlib. Every run has a page of its own with four of them,
and a report of hundreds of runs draws them all: a matplotlib figure per run took about 0.75 s (300 runs,
four minutes), these take milliseconds. Text is escaped; the charts need nothing from outside the page.

Legible at a glance: round ticks (or the named points of a ladder, rotated), the legend below the plot so
that it covers no line, and each series its own dash and marker, so that series that coincide all stay
visible (open markers are unfilled: a point under them shows through)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from html import escape

from harness.core.units import format_count

WIDTH, PLOT_H = 520, 228
LEFT, RIGHT, TOP = 64, 16, 28  # margins: tick labels left, the title above
X_AXIS, NAMED_X_AXIS = 44, 84  # below the plot: ticks and label (rotated names need more)
LEGEND_ROW, LEGEND_COLUMNS = 15, 3
MAX_POINTS = 400  # a series longer than this is thinned evenly (its first and last points kept)
MIN_TICK_GAP = 11  # pixels between two named ticks: a closer one is left out
DASHES = ("", "7 3", "2 2", "9 3 2 3", "4 4", "12 2")  # one per series, in order
MARKERS = ("circle", "square", "triangle", "diamond", "down", "pentagon")


@dataclass(frozen=True)
class Series:
    label: str
    xs: list[float]
    ys: list[float]
    color: str
    dots: bool = False  # a marker at each point (evaluations), else a line only
    hollow: tuple[bool, ...] = ()  # per point: an open marker (a predicted figure), else a filled one
    ringed: float | None = None  # the x of a point drawn with a ring around it (the best)
    marked: tuple[float, ...] = ()  # the xs of points drawn with a dashed ring (contenders)
    dash: str = ""  # the line's dash pattern ("" solid)
    marker: str = "circle"
    joined: bool = True  # a line through the points; False: the markers alone (a scatter)


def styled(series: list[Series]) -> list[Series]:
    """Each series its own dash and marker, in order: lines that coincide stay distinguishable."""
    return [
        replace(s, dash=DASHES[i % len(DASHES)], marker=MARKERS[i % len(MARKERS)])
        for i, s in enumerate(series)
    ]


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


def round_ticks(lo: float, hi: float, log: bool) -> list[float]:
    """Round values within [lo, hi] (in axis units: log10 of the value on a log axis), four to eight of
    them: steps of 1, 2 or 5 times a power of ten; on a log axis 1, 2 and 5 in each decade, or whole
    decades where those are too many."""
    if log:
        decades = range(math.floor(lo), math.ceil(hi) + 1)
        for mantissas in ((1, 2, 5), (1,)):
            ticks = [math.log10(m) + d for d in decades for m in mantissas]
            ticks = [t for t in ticks if lo <= t <= hi]
            if len(ticks) <= 8:
                return ticks if len(ticks) >= 2 else [lo, hi]
        step = math.ceil(len(ticks) / 8)
        return ticks[::step]
    raw = (hi - lo) / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _tick_text(value: float, log: bool) -> str:
    if log:
        return format_count(10**value)
    return f"{value:.4g}" if abs(value) < 1e4 else format_count(value)


@dataclass(frozen=True)
class _Frame:
    """The plot area and its scales: data coordinates to pixels (either axis on a log scale if asked)."""

    x0: float
    x1: float
    y0: float
    y1: float
    log_x: bool
    log_y: bool = False
    w: float = WIDTH - LEFT - RIGHT
    h: float = PLOT_H

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

    def axes(self, x_label: str, y_label: str, named: list[tuple[float, str]] | None) -> list[str]:
        w, h = self.w, self.h
        parts = [f'<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
        for t in round_ticks(self.y0, self.y1, self.log_y):
            y = TOP + (1 - (t - self.y0) / (self.y1 - self.y0)) * h
            parts.append(f'<line x1="{LEFT}" x2="{LEFT + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
            parts.append(
                f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{_tick_text(t, self.log_y)}</text>'
            )
        parts += self._named_ticks(named) if named else self._round_x_ticks()
        bottom = TOP + h + (NAMED_X_AXIS if named else X_AXIS)
        parts.append(
            f'<text x="{LEFT + w / 2}" y="{bottom - 8}" text-anchor="middle">{escape(x_label)}</text>'
        )
        parts.append(
            f'<text x="12" y="{TOP + h / 2}" text-anchor="middle" transform="rotate(-90 12 {TOP + h / 2})">'
            f"{escape(y_label)}</text>"
        )
        return parts

    def _round_x_ticks(self) -> list[str]:
        parts = []
        for t in round_ticks(self.x0, self.x1, self.log_x):
            x = LEFT + (t - self.x0) / (self.x1 - self.x0) * self.w
            parts.append(f'<text x="{x:.1f}" y="{TOP + self.h + 14}" text-anchor="middle">')
            parts.append(f"{_tick_text(t, self.log_x)}</text>")
        return parts

    def _named_ticks(self, named: list[tuple[float, str]]) -> list[str]:
        """A tick at each named x (a ladder's sizes), its name rotated; one too near the last is left out."""
        parts, last = [], -math.inf
        for value, name in sorted(named):
            x = self.px(value)
            if not LEFT <= x <= LEFT + self.w or x - last < MIN_TICK_GAP:
                continue
            last, y = x, TOP + self.h
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 4}" stroke="#999"/>')
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{y + 8}" text-anchor="end" font-size="10" '
                f'transform="rotate(-50 {x:.1f} {y + 8})">{escape(name)}</text>'
            )
        return parts

    def hline(self, y: float) -> str:
        at = f"{self.py(y):.1f}"
        dashed = 'stroke="black" stroke-dasharray="4 3"'
        return f'<line x1="{LEFT}" x2="{LEFT + self.w}" y1="{at}" y2="{at}" {dashed}/>'

    def series(self, s: Series, points: list[Point]) -> list[str]:
        color = escape(s.color)
        coords = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y, _ in points)
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        line = f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.4"{dash}/>'
        parts = [line] if s.joined else []
        if s.dots or not s.joined:
            parts += [marker(s.marker, self.px(x), self.py(y), color, hollow) for x, y, hollow in points]
        for x, y, _ in points:
            cx, cy = f"{self.px(x):.1f}", f"{self.py(y):.1f}"
            if s.ringed is not None and x == s.ringed:
                ring = f'fill="none" stroke="{color}" stroke-width="2"'
                parts.append(f'<circle class="best" cx="{cx}" cy="{cy}" r="8" {ring}/>')
            elif x in s.marked:
                parts.append(
                    f'<circle class="contender" cx="{cx}" cy="{cy}" r="8" fill="none" stroke="{color}" '
                    'stroke-width="1.2" stroke-dasharray="2 2"/>'
                )
        return parts


def marker(shape: str, x: float, y: float, color: str, hollow: bool, kind: str = "point") -> str:
    """A point's marker: filled (a measured figure) or open (a predicted one, unfilled so that what lies
    under it stays visible); `kind` "key" for the legend's."""
    r = 3.2
    fill = "none" if hollow else color
    paint = (
        f'class="{kind} {"open" if hollow else "filled"}" fill="{fill}" stroke="{color}" stroke-width="1.3"'
    )
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" {paint}/>'
    corners = {
        "square": ((-1, -1), (1, -1), (1, 1), (-1, 1)),
        "triangle": ((0, -1.25), (1.15, 0.9), (-1.15, 0.9)),
        "down": ((0, 1.25), (1.15, -0.9), (-1.15, -0.9)),
        "diamond": ((0, -1.35), (1.35, 0), (0, 1.35), (-1.35, 0)),
        "pentagon": ((0, -1.2), (1.15, -0.35), (0.7, 1.0), (-0.7, 1.0), (-1.15, -0.35)),
    }[shape]
    points = " ".join(f"{x + dx * r:.1f},{y + dy * r:.1f}" for dx, dy in corners)
    return f'<polygon points="{points}" {paint}/>'


def legend(entries: list[tuple[Series | None, str, str]], top: float) -> list[str]:
    """Below the plot, in columns: each entry's line (its dash) and marker, then its label."""
    parts, column_w = [], (WIDTH - LEFT) / LEGEND_COLUMNS
    for i, (s, label, color) in enumerate(entries):
        left = LEFT + (i % LEGEND_COLUMNS) * column_w
        y = top + (i // LEGEND_COLUMNS) * LEGEND_ROW
        dash = s.dash if s is not None else "4 3"
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        if s is None or s.joined:
            parts.append(
                f'<line x1="{left:.1f}" x2="{left + 22:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{escape(color)}" stroke-width="1.6"{dashed}/>'
            )
        if s is not None and (s.dots or not s.joined):
            parts.append(marker(s.marker, left + 11, y, escape(color), False, kind="key"))
        parts.append(f'<text class="legend" x="{left + 27:.1f}" y="{y + 4:.1f}">{escape(label)}</text>')
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
    x_names: list[tuple[float, str]] | None = None,
) -> str:
    """One chart: each series as a polyline in its dash (with its markers if asked: filled, or open where a
    point says so; a ring around the best, a dashed one around each contender), an optional dashed
    horizontal line (the Bayes floor), round ticks or the named xs given (`x_names`), and the legend below;
    an axis on a log scale if asked (its points must be positive). An empty chart says so."""

    def shown(x: float, y: float) -> bool:  # a log axis has no place for zero or below
        return (x > 0 or not log_x) and (y > 0 or not log_y)

    kept = [(s, [(x, y, h) for x, y, h in _finite(s) if shown(x, y)]) for s in series]
    drawn = [(s, p) for s, p in kept if p]
    floor = hline if hline is not None and math.isfinite(hline) else None
    entries = [(s, s.label, s.color) for s, _ in drawn] + ([(None, "Bayes floor", "black")] if floor else [])
    legend_top = TOP + PLOT_H + (NAMED_X_AXIS if x_names else X_AXIS) + 4
    height = legend_top + math.ceil(len(entries) / LEGEND_COLUMNS) * LEGEND_ROW
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" font-size="11" font-family="sans-serif">',  # inline, no xmlns
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
    ]
    if not drawn:
        parts.append(f'<text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(parts)
    xs = [x for _, p in drawn for x, _, _ in p]
    ys = [y for _, p in drawn for _, y, _ in p] + ([floor] if floor is not None else [])
    frame = _Frame.around(xs, ys, log_x, log_y)
    parts += frame.axes(x_label, y_label, x_names)
    if floor is not None:
        parts.append(frame.hline(floor))
    for s, points in drawn:
        parts += frame.series(s, points)
    parts += legend(entries, legend_top)
    parts.append("</svg>")
    return "".join(parts)
