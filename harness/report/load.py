"""Reading the runs folder for a report: every result.json that parses and holds figures of the kinds the
metric definitions declare; the rest is named in a warning and skipped, so one bad file never stops a
report (the end of a sweep renders one)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.results import (
    METRICS_FILE,
    RESULT_FILE,
    CorruptResult,
    RunResult,
    load_result,
    read_metrics,
)
from harness.metrics.definitions import METRICS

# What the report reads from a metric row of each kind: these must be finite numbers, or the row is dropped.
ROW_FIELDS = {"train": ("step", "tokens", "train_s", "loss"), "eval": ("step", "train_s", "val_loss")}


@dataclass
class LoadedRun:
    result: RunResult
    run_dir: Path
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def strategy(self) -> str:
        return str(self.result.strategy.get("name", "?"))

    def rows(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.metrics if r.get("kind") == kind]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_kinds(result: RunResult) -> None:
    """CorruptResult naming the first figure or field whose kind is not what the report reads."""
    for key, value in result.summary.items():
        metric = METRICS.get(key)
        if metric is None or value is None:
            continue
        ok = (
            isinstance(value, dict)
            if metric.kind is dict
            else (isinstance(value, str) if metric.kind is str else _number(value))
        )
        if not ok:
            raise CorruptResult(f"summary.{key} is {type(value).__name__}, not {metric.kind.__name__}")
    s = result.strategy
    if not isinstance(s.get("name", ""), str) or not isinstance(s.get("changes_math") or "", str):
        raise CorruptResult("strategy name or changes_math is not text")
    for key in ("notes", "experimental"):
        if not isinstance(s.get(key) or [], list) or not all(isinstance(n, str) for n in s.get(key) or []):
            raise CorruptResult(f"strategy {key} are not a list of texts")
    budget = result.recipe.get("budget_s")
    if budget is not None and not _number(budget):
        raise CorruptResult(f"recipe.budget_s is {type(budget).__name__}, not a number")


def clean_rows(rows: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """The metric rows the charts can draw (the others dropped), and how many were dropped."""
    kept = [
        r
        for r in rows
        if isinstance(r, dict)
        and r.get("kind") in ROW_FIELDS
        and all(_number(r.get(k)) for k in ROW_FIELDS[r["kind"]])
    ]
    return kept, len(rows) - len(kept)


def load_runs(runs_dir: Path) -> tuple[list[LoadedRun], list[str]]:
    """(runs, warnings). A corrupt, foreign or wrongly typed file is skipped with a warning naming it;
    non-finite figures and malformed metric rows are dropped, and named too."""
    runs, warnings = [], []
    for path in sorted(runs_dir.glob(f"*/{RESULT_FILE}")):
        try:
            result = load_result(path)
            check_kinds(result)
        except CorruptResult as exc:
            text = str(exc)
            warnings.append(f"skipped {text if text.startswith(str(path)) else f'{path}: {text}'}")
            continue
        if result.dropped_figures:
            warnings.append(f"{path}: not finite, read as unknown: {', '.join(result.dropped_figures)}")
        rows, dropped = clean_rows(read_metrics(path.parent / METRICS_FILE))
        if dropped:
            warnings.append(f"{path.parent / METRICS_FILE}: {dropped} malformed rows left out of the charts")
        runs.append(LoadedRun(result, path.parent, rows))
    for path in sorted(runs_dir.glob("*.json")):
        warnings.append(f"skipped {path}: not inside a run folder")
    return runs, warnings
