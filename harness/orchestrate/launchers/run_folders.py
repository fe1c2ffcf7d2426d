"""A run's folder, made before it starts: what the worker reads (config.json) and what `harness runs` lists
while the run waits."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.core.errors import UserError
from harness.core.recipe import RunConfig
from harness.core.results import CONFIG_FILE, write_json_atomic
from harness.core.serialize import to_dict


def create_run_dirs(configs: list[RunConfig], runs_root: Path) -> list[Path]:
    """Every run's folder of a plan, before any run starts (`harness runs` shows the queue), or none: a
    folder that cannot be made (its id taken by another sweep, a full disk) refuses the plan in one line
    and takes back the folders made before it."""
    made: list[Path] = []
    try:
        for cfg in configs:
            made.append(create_run_dir(cfg, runs_root))
    except OSError as exc:
        for run_dir in made:
            shutil.rmtree(run_dir, ignore_errors=True)
        reason = "its id is taken" if isinstance(exc, FileExistsError) else exc.strerror or str(exc)
        raise UserError(
            f"cannot make the folder of run {cfg.run_id} under {runs_root} ({reason}); nothing was started: "
            "run the command again"
        ) from None
    return made


def create_run_dir(cfg: RunConfig, runs_root: Path) -> Path:
    """A new run's folder with its config.json: what the worker reads, and what `harness runs` lists."""
    run_dir = Path(runs_root) / cfg.run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    write_json_atomic(run_dir / CONFIG_FILE, to_dict(cfg))
    return run_dir
