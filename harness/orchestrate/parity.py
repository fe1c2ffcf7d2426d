"""`harness parity`: every strategy trains N optimizer steps from the same init on the same data, and
its loss trajectory is compared step by step with `amp`'s."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import strategies
from harness.core.errors import UserError
from harness.core.metric_rows import read_metrics
from harness.core.results import METRICS_FILE, write_json_atomic
from harness.orchestrate.plan import Plan
from harness.orchestrate.sweep import run_plan

# Largest relative loss difference from amp allowed at any step. fp32 differs only by summation order;
# 16-bit formats round at every operation (and ZeRO keeps 16-bit weights where amp autocasts fp32 ones).
EXACT_MATH_BOUND = {"fp32": 1e-5, "bf16": 2e-2, "fp16": 2e-2}
# 8-bit optimizer state changes the update itself: a looser bound, stated in the output.
CHANGED_MATH_BOUND = {"fp32": 1e-2, "bf16": 5e-2, "fp16": 5e-2}


@dataclass
class ParityRow:
    strategy: str
    status: str
    bound: float | None = None
    max_rel_diff: float | None = None
    final_rel_diff: float | None = None
    within_bound: bool | None = None
    losses: list[float] = field(default_factory=list)
    error: str | None = None


def parity_bound(strategy: str, precision: str) -> float:
    spec = strategies.resolve(strategy)
    own = [p.parity_bounds[precision] for p in spec.parts if precision in p.parity_bounds]
    if own:
        return max(own)
    table = CHANGED_MATH_BOUND if spec.changes_math_at(precision) else EXACT_MATH_BOUND
    return table[precision]


def compare(baseline: list[float], losses: list[float]) -> tuple[float, float]:
    """(largest, final) relative difference over the steps both trajectories have."""
    if not baseline or len(losses) != len(baseline):
        raise ValueError(f"trajectories differ in length: {len(losses)} vs {len(baseline)} steps")
    rel = [abs(a - b) / abs(b) for a, b in zip(losses, baseline, strict=True)]
    return max(rel), rel[-1]


def step_losses(run_dir) -> list[float]:
    return [row["loss"] for row in read_metrics(run_dir / METRICS_FILE) if row.get("kind") == "train"]


@dataclass
class ParityOutcome:
    rows: list[ParityRow]
    precision: str | None
    record: Path | None
    stopped: bool

    @property
    def failed(self) -> bool:
        return any(r.within_bound is False or r.status != "ok" for r in self.rows)


def run_parity(plan: Plan, steps: int, out: Path) -> ParityOutcome:
    """The baseline and each strategy train `steps` optimizer steps from one init on one data order (a
    sweep of step-budgeted runs); each loss trajectory is compared with the baseline's."""
    if steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    names = [strategies.resolve(n).name for n in plan.strategies if n.strip()]
    names = [strategies.BASELINE] + [n for n in names if n != strategies.BASELINE]
    run = plan.run  # a row per step, one evaluation (at the end): the losses are the comparison
    run = replace(run, max_steps=steps, log_interval_s=0.0, recipe=replace(run.recipe, eval_points=1))
    plan = replace(plan, run=run, strategies=tuple(names), repeats=1, report=None)
    outcome = run_plan(plan, extra_outputs=(out,))
    precision = next((r.recipe.get("precision") for r in outcome.results), None)
    rows = [
        ParityRow(
            r.strategy.get("name", "?"), r.status, losses=step_losses(plan.runs_dir / r.run_id), error=r.error
        )
        for r in outcome.results
    ]
    _judge(rows, precision)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    record = Path(out) / f"{stamp}-{run.recipe.preset}.json"
    payload = {
        "steps": steps,
        "preset": run.recipe.preset,
        "precision": precision,
        "baseline": strategies.BASELINE,
    }
    write_json_atomic(record, {**payload, "rows": [asdict(r) for r in rows]})
    return ParityOutcome(rows, precision, record, outcome.stopped)


def _judge(rows: list[ParityRow], precision: str | None) -> None:
    if not rows:
        return
    baseline = rows[0]
    for row in rows[1:]:
        if row.status != "ok" or baseline.status != "ok" or precision not in EXACT_MATH_BOUND:
            continue
        row.bound = parity_bound(row.strategy, precision)
        row.max_rel_diff, row.final_rel_diff = compare(baseline.losses, row.losses)
        row.within_bound = row.max_rel_diff <= row.bound
