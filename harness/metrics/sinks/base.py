"""The metric-sink interface: where a run's metric rows go. `metrics.jsonl` always; trackers (TensorBoard,
and W&B or MLflow as one file each) when asked for with `--tracker NAME`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar


class MetricSink(ABC):
    """Receives every metric row of a run: `{"kind": "train" | "eval", "step": ..., ...}`."""

    name: ClassVar[str]
    description: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()  # importable modules it needs

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    @abstractmethod
    def open(self, resume_rows: int | None, resume_step: int | None) -> None:
        """Start writing; on resume, forget what was written after the checkpoint being resumed
        (`resume_rows` rows of metrics.jsonl, or everything from `resume_step` on)."""

    @abstractmethod
    def write(self, row: dict[str, Any]) -> None:
        """One metric row."""

    def finish(self, summary: dict[str, Any]) -> None:  # noqa: B027 (optional)
        """The run's final summary figures (a tracker may record some of them)."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release; idempotent."""
