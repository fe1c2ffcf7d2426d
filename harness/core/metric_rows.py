"""metrics.jsonl read back: its lines (a torn or damaged one left out, and counted) and the schema of the
rows readers draw (`harness.engine.metric_log` writes them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.core.schema import Number, Record, problem


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl lines that hold a JSON object (see `read_metric_lines`)."""
    return read_metric_lines(path)[0]


def read_metric_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(metrics.jsonl's JSON objects, how many lines were not one): a line torn when the process died
    mid-write, or damaged (not UTF-8, too deep, a number too long, not an object) is left out and counted."""
    rows, damaged = [], 0
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError:
        return rows, damaged
    for line in lines:
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            row = None
        if isinstance(row, dict):
            rows.append(row)
        elif line.strip():
            damaged += 1
    return rows, damaged


_COUNT, _SECONDS = Number(low=0, integer=True, optional=False), Number(low=0, optional=False)
# A metric row of each kind the readers draw, as the metric log writes it (`harness.engine.metric_log`).
METRIC_ROWS = {
    "train": Record({"step": _COUNT, "tokens": _COUNT, "train_s": _SECONDS, "loss": _SECONDS}),
    "eval": Record({"step": _COUNT, "train_s": _SECONDS, "val_loss": _SECONDS}),
}


def row_problem(row: dict[str, Any]) -> str | None:
    """What makes a metric row unusable (one line naming the field), or None."""
    kind = row.get("kind")
    spec = METRIC_ROWS.get(kind) if isinstance(kind, str) else None
    return f"kind {str(kind)[:40]!r} is not one of train, eval" if spec is None else problem(spec, row)
