"""Line charts as inline SVG, drawn without matplotlib. Every run has a page of its own with four of them,
and a report of hundreds of runs draws them all: a matplotlib figure per run took about 0.75 s (300 runs,
four minutes), these take milliseconds. Text is escaped; the charts need nothing from outside the page."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

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


def _finite(series: Series) -> list[tuple[float, float]]:
    points = [
        (float(x), float(y))
        for x, y in zip(series.xs, series.ys, strict=False)
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


def line_chart(
    title: str, x_label: str, y_label: str, series: list[Series], hline: float | None = None
) -> str:
    """One chart: each series as a polyline (with dots if asked), an optional dashed horizontal line (the
    Bayes floor), min / mid / max ticks on both axes, and a legend. An empty chart says so."""
    drawn = [(s, _finite(s)) for s in series]
    drawn = [(s, p) for s, p in drawn if p]
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-size="11" font-family="sans-serif">',  # inline: no namespace
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
    ]
    if not drawn:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(parts)
    xs = [x for _, p in drawn for x, _ in p]
    ys = [y for _, p in drawn for _, y in p] + ([hline] if hline is not None and math.isfinite(hline) else [])
    (x0, x1), (y0, y1) = _span(xs), _span(ys)
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return TOP + (1 - (y - y0) / (y1 - y0)) * h

    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    for frac in (0.0, 0.5, 1.0):
        xv, yv = x0 + frac * (x1 - x0), y0 + frac * (y1 - y0)
        parts.append(f'<text x="{px(xv):.1f}" y="{TOP + h + 14}" text-anchor="middle">{_tick(xv)}</text>')
        parts.append(f'<text x="{LEFT - 4}" y="{py(yv) + 4:.1f}" text-anchor="end">{_tick(yv)}</text>')
    parts.append(f'<text x="{LEFT + w / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(
        f'<text x="12" y="{TOP + h / 2}" text-anchor="middle" transform="rotate(-90 12 {TOP + h / 2})">'
        f"{escape(y_label)}</text>"
    )
    if hline is not None and math.isfinite(hline):
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + w}" y1="{py(hline):.1f}" y2="{py(hline):.1f}" stroke="black" '
            'stroke-dasharray="4 3"/>'
        )
    legend = [(s.label, s.color, False) for s, _ in drawn]
    if hline is not None and math.isfinite(hline):
        legend.append(("Bayes floor", "black", True))
    for i, (label, color, dashed) in enumerate(legend):
        ly = TOP + 14 + 14 * i
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        parts.append(
            f'<line x1="{LEFT + w - 150}" x2="{LEFT + w - 138}" y1="{ly - 7}" y2="{ly - 7}" '
            f'stroke="{escape(color)}" stroke-width="2"{dash}/>'
        )
        parts.append(f'<text x="{LEFT + w - 134}" y="{ly - 4}">{escape(label)}</text>')
    for s, points in drawn:
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{escape(s.color)}" stroke-width="1.4"/>'
        )
        if s.dots:
            parts.extend(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{escape(s.color)}"/>'
                for x, y in points
            )
    parts.append("</svg>")
    return "".join(parts)
