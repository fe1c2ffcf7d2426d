"""`harness sweep`: the strategies one after another on the same recipe, each in its own process, then
the report. A failed or out-of-memory run is recorded and the sweep goes on; an interrupt stops it
cleanly after the run in progress has checkpointed."""

from __future__ import annotations

import argparse
import sys

import strategies
from harness.config import format_duration
from harness.errors import UserError


def watchdog_s(budget_s: float) -> float:
    """How long a run may take in wall time before it counts as hung: generous, for setup and evals."""
    return 2 * budget_s + 3600


def run_sweep(args: argparse.Namespace) -> int:
    from harness.cli import prepare_data, run_config_from_args
    from harness.launcher import StopSignal, launch

    if args.repeats < 1:
        raise UserError(f"--repeats must be >= 1, got {args.repeats}")
    names = [spec.name for spec in strategies.resolve_list(args.strategies)]
    if not names:
        raise UserError("--strategies is empty: name at least one, e.g. amp,adam8bit")
    configs = [run_config_from_args(args, name) for name in names for _ in range(args.repeats)]
    prepare_data(configs[0])  # one recipe for all: tokenized once, before the first run
    total = len(configs)
    print(
        f"sweep: {total} runs ({', '.join(names)}; {args.repeats} each), preset {args.preset}, "
        f"budget {format_duration(configs[0].recipe.budget_s)} each",
        file=sys.stderr,
    )
    results = []
    with StopSignal() as stop:
        for number, cfg in enumerate(configs, 1):
            if stop.requested:
                print(
                    f"sweep: stopped after an interrupt; {total - number + 1} runs not started",
                    file=sys.stderr,
                )
                break
            print(f"sweep: run {number}/{total}: {cfg.strategy}", file=sys.stderr)
            result = launch(
                cfg,
                args.runs_dir,
                stop=stop,
                show_progress=not args.quiet,
                timeout_s=watchdog_s(cfg.recipe.budget_s),
            )
            results.append(result)
            tps = result.summary.tokens_per_s
            print(
                f"sweep: {cfg.strategy}: {result.status}"
                + (f", {tps:,.0f} tokens/s" if tps else "")
                + (f", val loss {result.summary.final_val_loss:.4f}" if result.summary.final_val_loss else "")
                + (f" — {result.error.splitlines()[0]}" if result.error else ""),
                file=sys.stderr,
            )
    _render(args)
    if stop.requested:
        return 130
    return 1 if any(r.status == "error" for r in results) else 0


def _render(args: argparse.Namespace) -> None:
    from harness.report import render_report

    try:
        out = render_report(args.runs_dir, args.report)
    except UserError as exc:
        print(f"sweep: report not rendered: {exc}", file=sys.stderr)
        return
    print(f"report: {out}")
