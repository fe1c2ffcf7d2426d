"""Charts as SVG (matplotlib, no pyplot state), embedded in the page as data URIs: the page works offline
and nothing in a chart can execute."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

from harness.report import svg
from harness.report.load import LoadedRun

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


def safe_label(text: str) -> str:
    """Text from a result file, made inert for matplotlib (no mathtext, no hidden '_' legend labels)."""
    return str(text).replace("$", r"\$").lstrip("_") or "?"


def colors(strategies: list[str]) -> dict[str, str]:
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(dict.fromkeys(strategies))}


def to_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _finish(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=8)


def _curves(runs: list[LoadedRun], kind: str, x: str, y: str, palette: dict[str, str], ax) -> None:
    labelled = set()
    for run in runs:
        rows = [r for r in run.rows(kind) if r.get(x) is not None and r.get(y) is not None]
        if not rows:
            continue
        label = None if run.strategy in labelled else safe_label(run.strategy)
        labelled.add(run.strategy)
        ax.plot(
            [r[x] for r in rows],
            [r[y] for r in rows],
            color=palette[run.strategy],
            label=label,
            marker="o" if kind == "eval" else None,
            markersize=3,
            linewidth=1.4,
        )


@dataclass
class ChartInput:
    """What a comparison chart may draw from: one recipe fingerprint's runs and its comparison table."""

    runs: list[LoadedRun]  # every run of the group
    ok_runs: list[LoadedRun]
    table: pd.DataFrame  # one row per strategy (medians, spreads, best marks, ratios)
    palette: dict[str, str]  # one color per strategy, the same on every chart
    floor: float | None  # the Bayes-optimal loss, where the data has one


ChartFn = Callable[[ChartInput], str | None]  # a data URI, or None when there is nothing to draw
CHARTS: dict[str, ChartFn] = {}


def chart(name: str) -> Callable[[ChartFn], ChartFn]:
    """Register a comparison chart (drawn for each recipe group, in registration order)."""

    def add(fn: ChartFn) -> ChartFn:
        if name in CHARTS:
            raise ValueError(f"chart {name!r} is registered twice")
        CHARTS[name] = fn
        return fn

    return add


def draw_all(data: ChartInput) -> dict[str, str | None]:
    return {name: fn(data) for name, fn in CHARTS.items()}


@chart("loss")
def loss_curves(data: ChartInput) -> str | None:
    """Validation loss vs training time, and training loss vs tokens, every strategy on one chart each."""
    if not data.ok_runs:
        return None
    runs, floor, palette = data.ok_runs, data.floor, data.palette
    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    _curves(runs, "eval", "train_s", "val_loss", palette, left)
    _curves(runs, "train", "tokens", "loss", palette, right)
    for ax in (left, right):
        if floor is not None:
            ax.axhline(floor, color="black", linestyle="--", linewidth=1, label="Bayes floor")
    _finish(left, "training clock (s)", "validation loss (nats/token)", "Validation loss vs training time")
    _finish(right, "training tokens", "training loss (nats/token)", "Training loss vs tokens")
    return to_data_uri(fig)


def _bars(ax, table: pd.DataFrame, key: str, palette: dict[str, str]) -> None:
    names = [s for s in table.index if pd.notna(table.loc[s, key])]
    values = [float(table.loc[s, key]) for s in names]
    lows = [_gap(table, s, key, "min") for s in names]
    highs = [_gap(table, s, key, "max") for s in names]
    spread = [lows, highs] if any(lows) or any(highs) else None
    ax.bar(range(len(names)), values, color=[palette[s] for s in names], yerr=spread, capsize=4)
    ax.set_xticks(range(len(names)), [safe_label(s) for s in names], rotation=20, ha="right")


def _gap(table: pd.DataFrame, strategy: str, key: str, side: str) -> float:
    bound = table.loc[strategy].get(f"{key}_{side}")
    if bound is None or pd.isna(bound):
        return 0.0
    return abs(float(table.loc[strategy, key]) - float(bound))


@chart("throughput")
def throughput_bars(data: ChartInput) -> str | None:
    table, palette = data.table, data.palette
    if table.empty or "tokens_per_s" not in table or table["tokens_per_s"].isna().all():
        return None
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    _bars(ax, table, "tokens_per_s", palette)
    _finish(ax, "", "overall tokens/s (median; bars: min–max)", "Training throughput")
    return to_data_uri(fig)


GPU_LAYERS = (
    ("peak_allocated_gib", "allocated"),
    ("peak_reserved_gib", "reserved"),
    ("peak_nvml_used_gib", "NVML"),
)


@chart("memory")
def memory_bars(data: ChartInput) -> str | None:
    table, palette = data.table, data.palette
    if table.empty:
        return None
    has_gpu = any(k in table and table[k].notna().any() for k, _ in GPU_LAYERS)
    has_host = "peak_host_rss_gib" in table and table["peak_host_rss_gib"].notna().any()
    if not (has_gpu or has_host):
        return None
    fig = Figure(figsize=(11 if has_gpu else 5.5, 3.8))
    axes = fig.subplots(1, 2 if has_gpu else 1)
    axes = list(axes) if has_gpu else [axes]
    names = list(table.index)
    if has_gpu:
        ax = axes.pop(0)
        width = 0.8 / len(GPU_LAYERS)
        for i, (key, label) in enumerate(GPU_LAYERS):
            values = [float(table.loc[s, key]) if pd.notna(table.loc[s, key]) else math.nan for s in names]
            ax.bar(
                [j + (i - 1) * width for j in range(len(names))], values, width, label=label, color=PALETTE[i]
            )
        ax.set_xticks(range(len(names)), [safe_label(s) for s in names], rotation=20, ha="right")
        _finish(ax, "", "GiB", "GPU memory peaks")
    ax = axes[0]
    _bars(ax, table, "peak_host_rss_gib", palette)
    _finish(ax, "", "GiB", "Host RAM (peak RSS)")
    return to_data_uri(fig)


def run_curves(run: LoadedRun, floor: float | None) -> Markup:
    """A run's own page: losses vs time, loss vs tokens, learning rate and throughput vs time, as inline
    SVG (`harness.report.svg`: a report draws one set per run, so these must cost milliseconds)."""

    def series(kind: str, x: str, y: str, label: str, color: str, dots: bool = False) -> svg.Series:
        rows = [r for r in run.rows(kind) if r.get(x) is not None and r.get(y) is not None]
        return svg.Series(label, [r[x] for r in rows], [r[y] for r in rows], color, dots)

    train, val = PALETTE[0], PALETTE[1]
    charts = [
        svg.line_chart(
            "Loss vs training time", "training clock (s)", "loss (nats/token)",
            [series("train", "train_s", "loss", "training", train),
             series("eval", "train_s", "val_loss", "validation", val, dots=True)], floor,
        ),
        svg.line_chart(
            "Training loss vs tokens", "training tokens", "training loss",
            [series("train", "tokens", "loss", "training", train)], floor,
        ),
        svg.line_chart("Learning rate", "training clock (s)", "learning rate",
                       [series("train", "train_s", "lr", "lr", train)]),
        svg.line_chart("Throughput", "training clock (s)", "tokens/s (per log interval)",
                       [series("train", "train_s", "tokens_per_s", "tokens/s", train)]),
    ]  # fmt: skip
    return Markup("".join(charts))
