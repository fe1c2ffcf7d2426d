"""`local`: the runs one after another on this machine, each in its own child process, with live progress.
A failed or out-of-memory run is recorded and the next one starts; an interrupt stops after the run in
progress has checkpointed."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.core.recipe import RunConfig
from harness.core.results import RunResult
from harness.orchestrate.launchers.base import Launcher, watchdog_s
from harness.orchestrate.launchers.process import StopSignal, launch_one


def status_line(result: RunResult) -> str:
    s = result.summary
    return (
        f"{result.strategy.get('name', '?')}: {result.status}"
        + (f", {s.tokens_per_s:,.0f} tokens/s" if s.tokens_per_s else "")
        + (f", val loss {s.final_val_loss:.4f}" if s.final_val_loss else "")
        + (f" — {result.error.splitlines()[0]}" if result.error else "")
    )


class LocalLauncher(Launcher):
    name = "local"
    description = "one run after another on this machine (the default)"

    def run(
        self, configs: list[RunConfig], runs_dir: Path, stop: StopSignal, *, quiet: bool
    ) -> list[RunResult]:
        results = []
        total = len(configs)
        for number, cfg in enumerate(configs, 1):
            if stop.requested:
                print(
                    f"sweep: stopped after an interrupt; {total - number + 1} runs not started",
                    file=sys.stderr,
                )
                break
            if total > 1:
                print(f"sweep: run {number}/{total}: {cfg.strategy}", file=sys.stderr)
            result = launch_one(
                cfg, runs_dir, stop=stop, show_progress=not quiet, timeout_s=watchdog_s(cfg.recipe.budget_s)
            )
            results.append(result)
            if total > 1:
                print(f"sweep: {status_line(result)}", file=sys.stderr)
        return results
