"""`local`: the runs on this machine, each in its own child process. By default one after another with
live progress; with `--gpus` one run per listed GPU at a time, and with `--parallel N` N runs at once on
the CPU, each on its own cores (see the placement planner). A failed or out-of-memory run is recorded and
the next one starts; an interrupt stops every run in progress once it has checkpointed."""

from __future__ import annotations

from pathlib import Path

from harness.core.recipe import RunConfig
from harness.core.results import RunResult
from harness.orchestrate.host_memory import earlier_results, host_allowance_bytes, host_need_bytes
from harness.orchestrate.launchers.base import Launcher, watchdog_s
from harness.orchestrate.launchers.placed import PlacedRuns
from harness.orchestrate.launchers.process import launch_one
from harness.orchestrate.launchers.run_control import StopSignal
from harness.orchestrate.launchers.run_folders import create_run_dirs
from harness.orchestrate.placement import Planner, Slot, make_slots
from harness.orchestrate.topology import LiveTopology, NodeTopology


class LocalLauncher(Launcher):
    name = "local"
    description = "this machine: one run after another, or one per GPU (--gpus), or N on the CPU (--parallel)"

    topology: NodeTopology = LiveTopology()
    slots: list[Slot]

    def check(self, configs: list[RunConfig], runs_dir: Path) -> None:
        super().check(configs, runs_dir)
        self.slots = make_slots(self.options, self.topology, configs[0].device)

    def planner(self, configs: list[RunConfig], runs_dir: Path) -> Planner:
        """Host-memory admission only matters when runs share the node."""
        if len(self.slots) == 1:
            return Planner(configs, self.slots)
        earlier = earlier_results(runs_dir)
        return Planner(configs, self.slots, host_allowance_bytes(), lambda cfg: host_need_bytes(cfg, earlier))

    def run(
        self, configs: list[RunConfig], runs_dir: Path, stop: StopSignal, *, quiet: bool
    ) -> list[RunResult]:
        planner = self.planner(configs, runs_dir)
        create_run_dirs(configs, runs_dir)

        def run_one(cfg: RunConfig, slot: Slot, show_progress: bool) -> RunResult:
            return launch_one(
                cfg,
                runs_dir / cfg.run_id,
                stop=stop,
                show_progress=show_progress,
                timeout_s=watchdog_s(cfg.recipe.budget_s),
                env=slot.placement(self.name).child_env(),
            )

        return PlacedRuns(planner, run_one, stop, runs_dir, self.name, quiet).run()
