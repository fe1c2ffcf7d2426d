"""The report's capacity section, from a capacity document (capacity.json): one table that answers the
title question (per strategy, the largest model it trains, its speed, tokens in the budget, tokens per
parameter and the estimated loss; best marked), a chart of the largest trainable size against GPU memory,
and each strategy's memory broken down by kind, predicted beside measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from harness.core.errors import UserError
from harness.core.results import read_document
from harness.core.schema import (
    ANY,
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    TEXT,
    Flag,
    Invalid,
    Items,
    Named,
    Number,
    Record,
    check,
    problem,
)
from harness.core.units import finite_number
from harness.report import charts

GIB = 2**30
READ_WARNINGS = "read_warnings"  # what a reader left out of a document, each with why (never written)
KINDS = ("weights", "gradients", "optimizer", "activations", "other")
KIND_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f")


@dataclass
class CapacitySection:
    document: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    largest_chart: str | None = None
    breakdown_chart: str | None = None


_SIZE = Number(above=0, high=1e6)  # GiB: past any machine
_PARAMS = Number(above=0, high=1e15, integer=True)  # past any model trained
_PREDICTED = Record(
    {
        "gpu_bytes": NON_NEGATIVE,
        "host_bytes": NON_NEGATIVE,
        "micro_batch": COUNT,
        "breakdown_bytes": Named(Record({"gpu": NON_NEGATIVE, "host": NON_NEGATIVE}, optional=False)),
    }
)
_MEASURED = Record(
    {"peak_allocated_gib": NON_NEGATIVE, "peak_host_rss_gib": NON_NEGATIVE, "micro_batch": COUNT}
)
RESULT = Record(
    {
        "strategy": TEXT,
        "gpu_memory_gib": _SIZE,
        "largest": TEXT,
        "limited_by": TEXT,
        "confirmed": Flag(),
        "best": Record(
            {
                "params": Number(above=0, high=1e15, integer=True),
                "predicted": _PREDICTED,
                "measured": _MEASURED,
            }
        ),
        "outlook": Record(
            {
                "tokens_per_s": POSITIVE,
                "tokens": NON_NEGATIVE,
                "tokens_per_param": NON_NEGATIVE,
                "estimated_loss": NON_NEGATIVE,
                "loss_source": TEXT,
            }
        ),
    },
    optional=False,
)
CAPACITY = Record(
    {
        "results": Items(ANY, optional=False),  # each entry checked on its own (RESULT): one bad is left out
        "budget_s": POSITIVE,
        "created_at": TEXT,
        "command": Items(TEXT),
        "predict_only": Flag(),
        "precision": TEXT,
        "gpu_headroom": Number(low=0, high=1),
        "environment": Record({"gpu_name": TEXT}),
        "method": Named(TEXT),
        "host_memory_gib": _SIZE,
    },
    required=("results",),
)


def load_capacity(path: Path) -> dict[str, Any]:
    """A capacity document, checked against its schema so that rendering cannot fail on it: UserError
    naming the file and the field for a damaged document; an entry that fails is left out, and named under
    READ_WARNINGS."""
    document = read_document(path, "capacity")
    try:
        check(CAPACITY, document)
    except Invalid as exc:
        raise UserError(f"{path} is damaged: {exc}") from None
    kept, left_out = [], []
    for i, entry in enumerate(document["results"]):
        why = problem(RESULT, entry, f"results[{i}]")
        (left_out.append(f"{path}: left out {why}") if why else kept.append(entry))
    return {**document, "results": kept, READ_WARNINGS: left_out}


def table_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (strategy, memory size): the figures of its largest size; the best of each memory size marked
    (lowest estimated loss where estimated, else most parameters)."""
    rows = []
    for e in document["results"]:
        best = e.get("best") if isinstance(e.get("best"), dict) else {}
        outlook = e.get("outlook") if isinstance(e.get("outlook"), dict) else {}
        predicted = best.get("predicted") if isinstance(best.get("predicted"), dict) else {}
        measured = best.get("measured") if isinstance(best.get("measured"), dict) else {}
        rows.append(
            {
                "strategy": str(e.get("strategy", "?")),
                "gpu_memory_gib": finite_number(e.get("gpu_memory_gib")),
                "largest": e.get("largest") or "none",
                "params": finite_number(best.get("params")),
                "micro_batch": measured.get("micro_batch") or predicted.get("micro_batch"),
                "predicted_gpu_gib": _gib(predicted.get("gpu_bytes")),
                "predicted_host_gib": _gib(predicted.get("host_bytes")),
                "measured_gpu_gib": finite_number(measured.get("peak_allocated_gib")),
                "measured_host_gib": finite_number(measured.get("peak_host_rss_gib")),
                "tokens_per_s": finite_number(outlook.get("tokens_per_s")),
                "tokens": finite_number(outlook.get("tokens")),
                "tokens_per_param": finite_number(outlook.get("tokens_per_param")),
                "estimated_loss": finite_number(outlook.get("estimated_loss")),
                "limited_by": str(e.get("limited_by", "")),
                "confirmed": bool(e.get("confirmed")),
                "best": False,
            }
        )
    for size in {r["gpu_memory_gib"] for r in rows}:
        group = [r for r in rows if r["gpu_memory_gib"] == size and r["params"]]
        scored = [r for r in group if r["estimated_loss"] is not None]
        if scored:
            min(scored, key=lambda r: r["estimated_loss"])["best"] = True
        elif group:
            top = max(r["params"] for r in group)
            for r in group:
                r["best"] = r["params"] == top
    return rows


def _gib(value: Any) -> float | None:
    number = finite_number(value)
    return None if number is None else number / GIB


def largest_chart(rows: list[dict[str, Any]]) -> str | None:
    """Largest trainable parameters against GPU memory, one line per strategy."""
    points = [r for r in rows if r["gpu_memory_gib"] is not None and r["params"]]
    if not points:
        return None
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    palette = charts.colors([r["strategy"] for r in points])
    for strategy in palette:
        mine = sorted((r for r in points if r["strategy"] == strategy), key=lambda r: r["gpu_memory_gib"])
        xs, ys = [r["gpu_memory_gib"] for r in mine], [r["params"] / 1e9 for r in mine]
        ax.plot(xs, ys, marker="o", color=palette[strategy], label=charts.safe_label(strategy))
    ax.set_yscale("log")
    charts._finish(ax, "GPU memory (GiB)", "largest trainable model (B params)", "Capacity by strategy")
    return charts.to_data_uri(fig)


def breakdown_chart(document: dict[str, Any]) -> str | None:
    """Predicted GPU memory of each strategy's largest size, stacked by kind, at the largest memory size;
    a marker shows the measured peak where a run measured it."""
    entries = [
        e
        for e in document["results"]
        if isinstance(e.get("best"), dict) and isinstance(e["best"].get("predicted"), dict)
    ]
    if not entries:
        return None
    top = max(finite_number(e.get("gpu_memory_gib")) or 0 for e in entries)
    entries = [e for e in entries if finite_number(e.get("gpu_memory_gib")) == top]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    labels = [f"{charts.safe_label(e.get('strategy', '?'))}\n{e.get('largest')}" for e in entries]
    bottoms = [0.0] * len(entries)
    for kind, color in zip(KINDS, KIND_COLORS, strict=True):
        heights = [
            (
                finite_number(
                    ((e["best"]["predicted"].get("breakdown_bytes") or {}).get(kind) or {}).get("gpu")
                )
                or 0
            )
            / GIB
            for e in entries
        ]
        ax.bar(labels, heights, bottom=bottoms, color=color, label=kind)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    measured = [finite_number((e["best"].get("measured") or {}).get("peak_allocated_gib")) for e in entries]
    xs = [i for i, m in enumerate(measured) if m is not None]
    if xs:
        ax.scatter(
            xs, [measured[i] for i in xs], color="black", marker="_", s=600, label="measured peak", zorder=3
        )
    charts._finish(ax, "", "GPU memory (GiB)", f"Predicted GPU memory by kind at {top:g} GiB")
    return charts.to_data_uri(fig)


def capacity_section(document: dict[str, Any]) -> CapacitySection:
    rows = table_rows(document)
    return CapacitySection(document, rows, largest_chart(rows), breakdown_chart(document))
