"""Reading the runs folder for a report: every result.json that parses; the rest named in a warning."""

from __future__ import annotations

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


def load_runs(runs_dir: Path) -> tuple[list[LoadedRun], list[str]]:
    """(runs, warnings). A corrupt or foreign JSON file is skipped with a warning naming it."""
    runs, warnings = [], []
    for path in sorted(runs_dir.glob(f"*/{RESULT_FILE}")):
        try:
            result = load_result(path)
        except CorruptResult as exc:
            warnings.append(f"skipped {exc}")
            continue
        runs.append(LoadedRun(result, path.parent, read_metrics(path.parent / METRICS_FILE)))
    for path in sorted(runs_dir.glob("*.json")):
        warnings.append(f"skipped {path}: not inside a run folder")
    return runs, warnings
