"""Running a plan: its runs through a launcher (one child process each), then, for a sweep, the report.
`bench` is a plan of one run; `parity` a plan of step-budgeted runs plus a comparison."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import UserError
from harness.core.results import RunResult
from harness.core.units import format_duration
from harness.orchestrate.launchers import get_launcher
from harness.orchestrate.launchers.run_control import STOP_GRACE_S, StopSignal
from harness.orchestrate.plan import Plan, expand, prepare_data, runs_on_cuda
from harness.orchestrate.preflight import check_outputs, check_room
from harness.orchestrate.step_estimate import stop_grace_s


@dataclass
class Outcome:
    results: list[RunResult] = field(default_factory=list)
    report: Path | None = None
    stopped: bool = False  # an interrupt ended it early
    submitted: str | None = None  # a detached launcher's word on where the runs went (e.g. Slurm jobs)


def run_plan(plan: Plan, extra_outputs: tuple[Path, ...] = ()) -> Outcome:
    """Expand, check every output location and the launcher's options, prepare the data once, then run
    everything; a sweep's report is rendered at the end even when some runs failed (by a detached
    launcher's scheduler, after its last run)."""
    runner = get_launcher(plan.launch)
    configs = expand(plan, runs_here=runner.runs_here)
    check_outputs(plan.runs_dir, plan.report, *extra_outputs)
    if runner.runs_here:  # a cluster's runs write on its file systems, which this machine cannot see
        check_room(configs, plan.runs_dir)
    runner.check(configs, plan.runs_dir)
    prepare_data(configs[0])  # one recipe for all: tokenized once, before the first run
    if len(configs) > 1:
        names = list(dict.fromkeys(c.strategy for c in configs))
        print(
            f"sweep: {len(configs)} runs ({', '.join(names)}; {plan.repeats} each), "
            f"preset {plan.run.recipe.preset}, "
            f"budget {format_duration(configs[0].recipe.budget_s)} each",
            file=sys.stderr,
        )
    outcome = Outcome()
    on_cpu = not runs_on_cuda(plan.run.device)
    with StopSignal(grace_s=stop_grace_s(configs, on_cpu) if runner.runs_here else STOP_GRACE_S) as stop:
        outcome.results = runner.run(configs, plan.runs_dir, stop, quiet=plan.quiet)
        outcome.stopped = stop.requested
    if runner.detached:
        outcome.submitted = runner.finish(plan.runs_dir, plan.report)
    elif plan.report is not None:
        outcome.report = render(plan.runs_dir, plan.report)
    return outcome


def render(runs_dir: Path, out: Path) -> Path | None:
    from harness.report import render_report

    try:
        return render_report(runs_dir, out)
    except UserError as exc:
        print(f"sweep: report not rendered: {exc}", file=sys.stderr)
        return None
