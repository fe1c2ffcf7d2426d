"""The capacity answer as a terminal table (the HTML section is `harness.report.capacity`): per strategy and
GPU size, the largest model and its figures, from a capacity document."""

from __future__ import annotations

from harness.core.units import GIB

CAPACITY_COLUMNS = (
    ("strategy", 24), ("GPU GiB", 7), ("largest", 10), ("micro", 5), ("pred GPU", 9), ("pred host", 9),
    ("meas GPU", 9), ("tokens/s", 10), ("tok/param", 9), ("est loss", 8), ("limited by", 10),
)  # fmt: skip


def _cells(e: dict) -> list[str]:
    best, outlook = e["best"] or {}, e["outlook"] or {}
    pred, meas = best.get("predicted") or {}, best.get("measured") or {}

    def num(value, spec: str, scale: float = 1.0) -> str:
        return "-" if value is None else format(value if scale == 1 else value / scale, spec)

    return [
        e["strategy"],
        f"{e['gpu_memory_gib']:g}",
        e["largest"] or "none",
        num(meas.get("micro_batch") or pred.get("micro_batch"), "d"),
        num(pred.get("gpu_bytes"), ".1f", GIB),
        num(pred.get("host_bytes"), ".1f", GIB),
        num(meas.get("peak_allocated_gib"), ".1f"),
        num(outlook.get("tokens_per_s"), ",.0f"),
        num(outlook.get("tokens_per_param"), ".1f"),
        num(outlook.get("estimated_loss"), ".2f"),
        e["limited_by"],
    ]


def format_capacity(document: dict) -> str:
    """The answer as a terminal table: per strategy and size, the largest model and its figures."""
    rows = [[name for name, _ in CAPACITY_COLUMNS], *(_cells(e) for e in document["results"])]
    lines = [
        " ".join(cell.ljust(w) for cell, (_, w) in zip(row, CAPACITY_COLUMNS, strict=True)) for row in rows
    ]
    if document["predict_only"]:
        lines.append("predict-only: no speed measured, so no tokens in the budget and no loss estimate")
    return "\n".join(line.rstrip() for line in lines)
