"""The launcher axis: how a list of runs is executed. Every launcher runs each run in its own process
(the worker) and returns the results; they differ in where and how many at a time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from harness.core.recipe import RunConfig
from harness.core.results import RunResult
from harness.orchestrate.launchers.process import StopSignal


def watchdog_s(budget_s: float) -> float:
    """How long a run may take in wall time before it counts as hung: generous, for setup and evals."""
    return 2 * budget_s + 3600


class Launcher(ABC):
    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def run(
        self, configs: list[RunConfig], runs_dir: Path, stop: StopSignal, *, quiet: bool
    ) -> list[RunResult]:
        """Run every configuration (stopping early when `stop.requested`); one result per run started."""
