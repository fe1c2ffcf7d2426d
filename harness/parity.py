"""`harness parity`: every strategy trains N optimizer steps from the same init on the same data, and
its loss trajectory is compared step by step with `amp`'s."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import strategies
from harness.errors import UserError
from harness.results import METRICS_FILE, read_metrics, write_json_atomic

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
    table = (
        CHANGED_MATH_BOUND if strategies.resolve(strategy).changes_math_at(precision) else EXACT_MATH_BOUND
    )
    return table[precision]


def compare(baseline: list[float], losses: list[float]) -> tuple[float, float]:
    """(largest, final) relative difference over the steps both trajectories have."""
    if not baseline or len(losses) != len(baseline):
        raise ValueError(f"trajectories differ in length: {len(losses)} vs {len(baseline)} steps")
    rel = [abs(a - b) / abs(b) for a, b in zip(losses, baseline, strict=True)]
    return max(rel), rel[-1]


def step_losses(run_dir) -> list[float]:
    return [row["loss"] for row in read_metrics(run_dir / METRICS_FILE) if row.get("kind") == "train"]


def run_parity(args: argparse.Namespace) -> int:
    from harness.cli import prepare_data, run_config_from_args
    from harness.launcher import StopSignal, launch
    from harness.sweep import watchdog_s

    if args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    names = [spec.name for spec in strategies.resolve_list(args.strategies)]
    names = [strategies.BASELINE] + [n for n in names if n != strategies.BASELINE]
    args.overrides = [*args.overrides, "log_interval_s=0", "eval_points=1"]
    args.max_steps = args.steps
    configs = [run_config_from_args(args, name) for name in names]
    prepare_data(configs[0])
    rows: list[ParityRow] = []
    precision = None
    with StopSignal() as stop:
        for cfg in configs:
            if stop.requested:
                break
            result = launch(
                cfg,
                args.runs_dir,
                stop=stop,
                show_progress=not args.quiet,
                timeout_s=watchdog_s(cfg.recipe.budget_s),
            )
            precision = precision or result.recipe.get("precision")
            losses = step_losses(args.runs_dir / cfg.run_id)
            rows.append(ParityRow(cfg.strategy, result.status, losses=losses, error=result.error))
    baseline = rows[0]
    for row in rows[1:]:
        if row.status != "ok" or baseline.status != "ok" or precision not in EXACT_MATH_BOUND:
            continue
        row.bound = parity_bound(row.strategy, precision)
        row.max_rel_diff, row.final_rel_diff = compare(baseline.losses, row.losses)
        row.within_bound = row.max_rel_diff <= row.bound
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = args.out / f"{stamp}-{args.preset}.json"
    write_json_atomic(
        out,
        {
            "steps": args.steps,
            "preset": args.preset,
            "precision": precision,
            "baseline": strategies.BASELINE,
            "rows": [asdict(r) for r in rows],
        },
    )
    print(f"{'strategy':<24} {'status':<11} {'max rel diff':>13} {'final':>10} {'bound':>8}  verdict")
    for row in rows:
        verdict = {True: "within", False: "OUTSIDE", None: "baseline" if row is baseline else "n/a"}
        print(
            f"{row.strategy:<24} {row.status:<11} {_num(row.max_rel_diff):>13} {_num(row.final_rel_diff):>10}"
            f" {_num(row.bound):>8}  {verdict[row.within_bound]}" + (f" ({row.error})" if row.error else "")
        )
    print(f"parity record: {out}", file=sys.stderr)
    failed = any(r.within_bound is False or r.status != "ok" for r in rows)
    return 1 if failed else 0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"
