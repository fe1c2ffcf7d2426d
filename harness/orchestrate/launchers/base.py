"""The launcher axis: how a list of runs is executed. Every launcher runs each run in its own process
(the worker) and returns the results; they differ in where and how many at a time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from harness.core.errors import UserError
from harness.core.recipe import RunConfig
from harness.core.results import RunResult
from harness.orchestrate.launch_options import LaunchOptions, flags_given
from harness.orchestrate.launchers.run_control import StopSignal


def watchdog_s(budget_s: float) -> float:
    """How long a run may take in wall time before it counts as hung: generous, for setup and evals."""
    return 2 * budget_s + 3600


class Launcher(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    # A detached launcher hands the runs to a scheduler and returns before they end: no results to show
    # yet, and the report is rendered by the scheduler after the last run (not by this process).
    detached: ClassVar[bool] = False
    # Whether the runs execute on this machine (so that its device decides what can run).
    runs_here: ClassVar[bool] = True
    # The dataclass of this launcher's own settings (their flags come from its fields), if it has any.
    options_class: ClassVar[type | None] = None

    def __init__(self, options: LaunchOptions | None = None) -> None:
        self.options = options or LaunchOptions(launcher=self.name)

    def check(self, configs: list[RunConfig], runs_dir: Path) -> None:
        """Refuse, in one line and before anything starts, options this launcher cannot honour: by
        default, the settings of another launcher."""
        for settings in self.options.settings:
            given = flags_given(settings)
            if given and not isinstance(settings, self.options_class or ()):
                raise UserError(
                    f"{given[0]} is a {settings.label} setting: add --launcher {settings.launcher}, "
                    "or leave it out"
                )

    @property
    def own(self):
        """This launcher's own settings, as given (else their defaults)."""
        return self.options.settings_of(self.options_class)

    @abstractmethod
    def run(
        self, configs: list[RunConfig], runs_dir: Path, stop: StopSignal, *, quiet: bool
    ) -> list[RunResult]:
        """Run every configuration (stopping early when `stop.requested`); one result per run started."""

    def finish(self, runs_dir: Path, report: Path | None) -> str | None:
        """A detached launcher's arrangement for the report (a job after the last run): a line to show."""
        return None
