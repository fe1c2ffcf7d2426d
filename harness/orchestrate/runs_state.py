"""`harness runs`: the state of every run folder under a runs folder, read from the files alone, so that
it works while a sweep runs on this node or on a cluster's shared folder. A run folder holds config.json
from the start; metrics.jsonl grows while it trains; .lock names the process that runs it; result.json
appears when a session ends."""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import UserError
from harness.core.metric_rows import read_metrics
from harness.core.results import (
    CONFIG_FILE,
    METRICS_FILE,
    RESULT_FILE,
    CorruptResult,
    RunResult,
    read_json_object,
)
from harness.core.schema import NON_NEGATIVE, POSITIVE, Number, Record, problem
from harness.metrics.readback import read_result
from harness.orchestrate.launchers.run_control import LOCK_FILE, gone_from_here, named_holder

# What `runs` reads of a training row to show progress (the report needs more of it: `METRIC_ROWS`).
PROGRESS = Record(
    {"step": Number(low=0, integer=True, optional=False), "train_s": Number(low=0, optional=False),
     "loss": NON_NEGATIVE}
)  # fmt: skip
STATES = ("pending", "running", "interrupted", "ok", "oom", "error", "unreadable")


@dataclass
class RunState:
    run_id: str
    strategy: str
    preset: str
    state: str
    budget_s: float | None = None
    train_s: float | None = None  # the training clock so far
    eta_s: float | None = None  # wall time until the budget is spent, at the recent pace
    steps: int | None = None
    tokens_per_s: float | None = None
    loss: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lock_holder(run_dir: Path) -> tuple[int, str | None] | None:
    """(pid, host) of the process that holds the run's lock now, as it wrote there; None when free. A
    holder on this host that no longer exists is a crash, and counts as free."""
    try:
        named = named_holder((run_dir / LOCK_FILE).read_text())
    except OSError:
        return None
    return None if named is None or gone_from_here(*named) else named


def _config(run_dir: Path) -> dict[str, Any] | None:
    return read_json_object(run_dir / CONFIG_FILE)


def run_state(run_dir: Path) -> RunState | None:
    """The state of one run folder; None for a folder that is not a run's (no config.json)."""
    config = _config(run_dir)
    if config is None:
        if not (run_dir / CONFIG_FILE).exists():
            return None
        return RunState(run_dir.name, "?", "?", "unreadable", detail=f"{CONFIG_FILE} is not a JSON object")
    recipe = config.get("recipe") if isinstance(config.get("recipe"), dict) else {}
    state = RunState(
        run_dir.name, str(config.get("strategy", "?")), str(recipe.get("preset", "?")), "pending"
    )
    state.budget_s = recipe.get("budget_s") if problem(POSITIVE, recipe.get("budget_s")) is None else None
    rows = read_metrics(run_dir / METRICS_FILE)
    train = [r for r in rows if r.get("kind") == "train" and problem(PROGRESS, r) is None]
    if train:
        last = train[-1]
        state.train_s, state.steps, state.loss = last["train_s"], last["step"], last.get("loss")
        speed = last.get("tokens_per_s")
        state.tokens_per_s = speed if problem(POSITIVE, speed) is None else None
    holder = lock_holder(run_dir)
    result, damage = _result(run_dir)
    if holder is not None:
        state.state = "running"
        _running_detail(state, train, holder)
    elif result is not None:
        state.state = result.status
        state.train_s = result.summary.get("train_s") or state.train_s
        state.steps = result.summary.get("steps") or state.steps
        state.tokens_per_s = result.summary.get("tokens_per_s") or state.tokens_per_s
        state.detail = (result.error or "").splitlines()[0][:160] if result.error else ""
    elif damage is not None:
        state.state, state.detail = "unreadable", damage[:160]
    elif rows:
        state.state = "error"
        state.detail = "it stopped without a result and no process holds it (resume it if it checkpointed)"
    return state


def _result(run_dir: Path) -> tuple[RunResult | None, str | None]:
    """(its result, checked, figures set aside as None; why its result.json cannot be read, if it cannot)."""
    path = run_dir / RESULT_FILE
    if not path.exists():
        return None, None
    try:
        return read_result(path)[0], None
    except CorruptResult as exc:
        return None, f"{RESULT_FILE}: {str(exc).removeprefix(f'{path}: ')}"


def _running_detail(state: RunState, train: list[dict], holder: tuple[int, str | None]) -> None:
    pid, host = holder
    where = f"process {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")
    if not train:
        state.detail = f"setting up ({where})"
        return
    pace = train[-1].get("wall_per_train")
    if problem(POSITIVE, pace) is None and state.budget_s is not None and state.train_s is not None and pace:
        state.eta_s = max(0.0, state.budget_s - state.train_s) * pace
    state.detail = where


def run_states(runs_dir: Path) -> list[RunState]:
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"no runs folder at {runs_dir}: pass --runs-dir, or start a run first")
    found = [run_state(p) for p in sorted(runs_dir.iterdir()) if p.is_dir()]
    return [s for s in found if s is not None]
