"""The run pages' inline SVG charts: points where the data says, text escaped, long series thinned,
nothing drawn from non-finite values, and every run page with its four charts."""

import math
import re

import pytest

from harness.report import svg
from harness.report.load import load_runs
from harness.report.render import render_report
from tests.report_fixtures import write_run


def polyline(chart: str) -> list[tuple[float, float]]:
    (points,) = re.findall(r'<polyline points="([^"]+)"', chart)
    return [tuple(map(float, p.split(","))) for p in points.split()]


def test_points_are_placed_by_their_values_in_the_frame():
    chart = svg.line_chart("t", "x", "y", [svg.Series("s", [0, 1, 2], [10.0, 5.0, 0.0], "#123456")])
    (a, b, c) = polyline(chart)
    frame_left, frame_right = svg.LEFT, svg.WIDTH - svg.RIGHT
    assert frame_left < a[0] < b[0] < c[0] < frame_right  # x grows to the right, inside the frame
    assert b[0] - a[0] == c[0] - b[0]  # equal steps in x, equal distances
    assert a[1] < b[1] < c[1]  # larger values higher up (smaller SVG y)
    assert abs((b[1] - a[1]) - (c[1] - b[1])) < 0.11  # linear in y too (to the 0.1 px it prints)


def test_text_is_escaped_and_bad_values_are_left_out():
    hostile = '<script>alert(1)</script>"'
    chart = svg.line_chart(
        hostile, hostile, hostile, [svg.Series(hostile, [0, 1, 2, 3], [1.0, float("nan"), "x", 2.0], "#000")]
    )
    assert "<script>" not in chart and "&lt;script&gt;" in chart
    assert len(polyline(chart)) == 2  # NaN and a string are not points
    empty = svg.line_chart("nothing", "x", "y", [svg.Series("s", [], [], "#000")])
    assert "no data" in empty and "<polyline" not in empty


def test_a_long_series_is_thinned_evenly_keeping_its_ends():
    n = 10_000
    chart = svg.line_chart(
        "t", "x", "y", [svg.Series("s", list(range(n)), [float(i) for i in range(n)], "#000")]
    )
    points = polyline(chart)
    assert len(points) == svg.MAX_POINTS
    ends = svg.line_chart("t", "x", "y", [svg.Series("s", [0, n - 1], [0.0, n - 1.0], "#000")])
    assert [points[0], points[-1]] == polyline(ends)  # the first and last points are kept exactly
    xs = [x for x, _ in points]
    assert xs == sorted(xs) and points[-1] == max(points, key=lambda p: p[0])


def test_every_run_page_has_its_four_charts_and_the_floor(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "r-amp", "amp", tokens_per_s=1000.0, final_val_loss=3.0)
    write_run(runs, "r-ckpt", "act_ckpt", tokens_per_s=900.0, final_val_loss=3.1)
    out = render_report(runs, tmp_path / "site" / "index.html")
    loaded, _ = load_runs(runs)
    pages = sorted((out.parent / "run_pages").iterdir())
    assert len(pages) == len(loaded) == 2
    for page in pages:
        html = page.read_text()
        labels = re.findall(r'<svg class="chart" role="img" aria-label="([^"]+)"', html)
        assert labels == ["Loss vs training time", "Training loss vs tokens", "Learning rate", "Throughput"]
        assert html.count("Bayes floor") >= 2  # the dashed floor on both loss charts
        assert "<img" not in html.split('<div class="charts run-curves">')[1].split("</div>")[0]


def test_round_ticks_are_round_and_cover_the_span():
    assert svg.round_ticks(2.74, 3.59, log=False) == pytest.approx([2.8, 3.0, 3.2, 3.4])
    assert svg.round_ticks(0.0, 1.0, log=False) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    decades = svg.round_ticks(math.log10(3e3), math.log10(5e6), log=True)  # 1, 2, 5 per decade: too many
    assert [round(10**t) for t in decades] == [10_000, 100_000, 1_000_000]


def test_named_ticks_name_each_size_and_leave_out_one_too_close_to_read():
    names = [(16e6, "gpt-16m"), (124e6, "gpt2-124m"), (125e6, "too-close"), (1.3e9, "gpt-1.3b")]
    chart = svg.line_chart(
        "t", "x", "y", [svg.Series("s", [16e6, 1.3e9], [3.0, 2.9], "#000")], log_x=True, x_names=names
    )
    assert re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', chart) == [
        "gpt-16m",
        "gpt2-124m",
        "gpt-1.3b",
    ]


def legend_ys(chart: str) -> list[float]:
    return [float(y) for y in re.findall(r'<text class="legend" x="[^"]+" y="([^"]+)"', chart)]


def test_the_legend_lies_below_the_plot_and_covers_no_line():
    series = [svg.Series(f"s{i}", [0, 1], [i, i + 1.0], "#000") for i in range(7)]
    chart = svg.line_chart("t", "x", "y", series, hline=0.5)
    ys = legend_ys(chart)
    assert len(ys) == 8  # seven series and the floor
    assert min(ys) > svg.TOP + svg.PLOT_H  # below the plot area, whatever the number of series
    height = float(re.search(r'height="([0-9.]+)"', chart).group(1))
    assert max(ys) < height  # and inside the drawing, which grows to hold it


def test_series_that_coincide_each_stay_visible():
    same = [svg.Series(name, [1, 2, 3], [1.0, 2.0, 3.0], "#123", dots=True) for name in ("a", "b", "c")]
    chart = svg.line_chart("t", "x", "y", svg.styled(same))
    dashes = [
        re.search(r'stroke-dasharray="([^"]+)"', line) for line in re.findall(r"<polyline[^>]+>", chart)
    ]
    patterns = [d.group(1) if d else "" for d in dashes]
    assert len(set(patterns)) == 3  # a dash pattern each
    shapes = re.findall(r'<(circle|polygon) [^>]*class="point filled"', chart)
    assert shapes.count("circle") == 3 and shapes.count("polygon") == 6  # a marker shape each
    open_points = svg.line_chart("t", "x", "y", [svg.Series("p", [1, 2], [1.0, 2.0], "#123", dots=True,
                                                            hollow=(True, True))])  # fmt: skip
    assert open_points.count('class="point open" fill="none"') == 2  # unfilled: what is under shows through


def test_the_best_is_ringed_and_each_contender_ringed_dashed():
    s = svg.Series("a", [1, 2, 3], [3.0, 2.0, 2.0001], "#123", dots=True, ringed=2, marked=(3,))
    chart = svg.line_chart("t", "x", "y", [s])
    assert chart.count('class="best"') == 1 and chart.count('class="contender"') == 1
