"""Continuing an interrupted run: which run folder, whether it can be resumed, and the resumed run itself
(in a child process, with its own recipe and the remaining budget)."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.core.checkpoint_files import CHECKPOINT_DIR, newest_intact
from harness.core.errors import UserError
from harness.core.recipe import BASELINE
from harness.core.results import (
    CONFIG_FILE,
    RESULT_FILE,
    CorruptResult,
    RunResult,
    load_result,
    read_json_object,
    read_run_config,
)
from harness.core.units import format_duration
from harness.orchestrate.launchers.process import launch_one
from harness.orchestrate.launchers.run_control import RunLock, StopSignal
from harness.orchestrate.plan import runs_on_cuda
from harness.orchestrate.preflight import check_folder
from harness.orchestrate.step_estimate import stop_grace_s


def _status(run_dir: Path) -> str | None:
    try:
        return load_result(run_dir / RESULT_FILE).status
    except CorruptResult:
        return None


def find_run(runs_dir: Path, which: str, strategy: str, preset: str) -> Path:
    """A run id, or 'latest': the newest unfinished run of this strategy and preset with checkpoints (a
    finished run keeps its checkpoints, so "has checkpoints" alone would pick it)."""
    if which != "latest":
        run_dir = runs_dir / which
        if not (run_dir / CONFIG_FILE).is_file():
            raise UserError(f"no run {which!r} under {runs_dir}: pass a run id from `ls {runs_dir}`")
        return run_dir
    candidates = []
    for config in sorted(runs_dir.glob(f"*/{CONFIG_FILE}")):
        data = read_json_object(config)
        if data is None:  # unreadable: not a run to resume (`harness runs` names it)
            continue
        recipe = data.get("recipe") if isinstance(data.get("recipe"), dict) else {}
        same = data.get("strategy") == strategy and recipe.get("preset") == preset
        if same and (config.parent / CHECKPOINT_DIR).is_dir() and _status(config.parent) != "ok":
            candidates.append(config.parent)
    if not candidates:
        raise UserError(
            f"nothing to resume: no unfinished {strategy}/{preset} run with checkpoints under {runs_dir}"
        )
    return max(candidates, key=lambda p: p.stat().st_mtime)


def resume_run(
    runs_dir: Path, which: str, strategy: str | None, preset: str, *, quiet: bool
) -> tuple[RunResult, Path]:
    """Resume `which`: 'latest' (the newest unfinished run of `strategy`, amp if none is named, and
    `preset`), or a run id, whose own strategy is used unless another is named, which is refused."""
    check_folder(runs_dir, "--runs-dir")
    run_dir = find_run(runs_dir, which, strategy or BASELINE, preset)
    if _status(run_dir) == "ok":
        raise UserError(f"run {run_dir.name} already finished (status ok): nothing to resume")
    cfg = read_run_config(run_dir)
    if strategy is not None and cfg.strategy != strategy:
        raise UserError(
            f"run {run_dir.name} is a {cfg.strategy} run, not {strategy}: "
            f"resume it with --strategy {cfg.strategy}"
        )
    if newest_intact(run_dir / CHECKPOINT_DIR) is None:
        raise UserError(
            f"run {run_dir.name} has no intact checkpoint to resume from: start it again without --resume"
        )
    grace_s = stop_grace_s([cfg], on_cpu=not runs_on_cuda(cfg.device))
    # Before anything is said or started: a second resume of one run is refused; a worker orphaned by a
    # killed launcher is waited for, for as long as a stop gives it to end.
    lock = RunLock(run_dir, orphan_wait_s=grace_s)
    print(
        f"resuming {run_dir.name} with its own recipe (budget {format_duration(cfg.recipe.budget_s)})",
        file=sys.stderr,
    )
    with StopSignal(grace_s=grace_s) as stop:
        result = launch_one(cfg, run_dir, resume=True, stop=stop, show_progress=not quiet, lock=lock)
    return result, run_dir
