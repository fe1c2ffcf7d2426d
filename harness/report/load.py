"""Reading the runs folder for a report: every result.json that parses and holds figures of the kinds the
metric definitions declare; the rest is named in a warning and skipped, so one bad file never stops a
report (the end of a sweep renders one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.metric_rows import read_metric_lines, row_problem
from harness.core.results import METRICS_FILE, RESULT_FILE, CorruptResult, RunResult
from harness.metrics.readback import read_result


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


def clean_rows(rows: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """The metric rows the charts can draw (the others dropped), and how many were dropped."""
    kept = [r for r in rows if isinstance(r, dict) and row_problem(r) is None]
    return kept, len(rows) - len(kept)


def load_runs(runs_dir: Path) -> tuple[list[LoadedRun], list[str]]:
    """(runs, warnings). A corrupt, foreign or wrongly typed file is skipped with a warning naming it;
    non-finite figures and malformed metric rows are dropped, and named too."""
    runs, warnings = [], []
    for path in sorted(runs_dir.glob(f"*/{RESULT_FILE}")):
        try:
            result, notes = read_result(path)
        except CorruptResult as exc:
            text = str(exc)
            warnings.append(f"skipped {text if text.startswith(str(path)) else f'{path}: {text}'}")
            continue
        warnings += notes
        lines, damaged = read_metric_lines(path.parent / METRICS_FILE)
        rows, dropped = clean_rows(lines)
        if damaged:
            warnings.append(f"{path.parent / METRICS_FILE}: {damaged} damaged lines left out")
        if dropped:
            warnings.append(f"{path.parent / METRICS_FILE}: {dropped} malformed rows left out of the charts")
        runs.append(LoadedRun(result, path.parent, rows))
    for path in sorted(runs_dir.glob("*.json")):
        warnings.append(f"skipped {path}: not inside a run folder")
    return runs, warnings
