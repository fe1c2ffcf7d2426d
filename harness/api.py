"""The harness from Python: everything the command line does, with typed arguments.

from harness.api import Plan, sweep
outcome = sweep(Plan.of(("amp", "adam8bit"), preset="tiny", budget="20s", report=Path("r.html")))
for result in outcome.results:
    print(result.strategy["name"], result.status, result.summary.tokens_per_s)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.core.plugins import load_plugins
from harness.core.results import RunResult
from harness.orchestrate.answer_plan import AnswerPlan
from harness.orchestrate.capacity import CapacityPlan, run_capacity
from harness.orchestrate.fit import FitPlan
from harness.orchestrate.launch_options import LaunchOptions
from harness.orchestrate.launchers.slurm_options import SlurmOptions
from harness.orchestrate.parity import ParityOutcome, run_parity
from harness.orchestrate.plan import DEFAULT_REPORT, DEFAULT_RUNS_DIR, Plan
from harness.orchestrate.resume import resume_run
from harness.orchestrate.runs_state import RunState, run_states
from harness.orchestrate.sweep import Outcome, run_plan

__all__ = [
    "DEFAULT_REPORT",
    "DEFAULT_RUNS_DIR",
    "AnswerPlan",
    "CapacityPlan",
    "FitPlan",
    "LaunchOptions",
    "Outcome",
    "ParityOutcome",
    "Plan",
    "RunState",
    "SlurmOptions",
    "answer",
    "bench",
    "capacity",
    "fit",
    "parity",
    "report",
    "resume",
    "runs",
    "sweep",
]


def bench(plan: Plan) -> RunResult:
    """One run of the plan's (first) strategy; its result, whatever its status."""
    load_plugins()
    outcome = run_plan(replace(plan, strategies=plan.strategies[:1], repeats=1, report=None))
    return outcome.results[0]


def resume(
    runs_dir: Path, which: str, strategy: str | None, preset: str, *, quiet: bool = False
) -> tuple[RunResult, Path]:
    """Continue an interrupted run ('latest' of this strategy and preset, or a run id)."""
    load_plugins()
    return resume_run(runs_dir, which, strategy, preset, quiet=quiet)


def sweep(plan: Plan) -> Outcome:
    """Every strategy of the plan (each `repeats` times), one child process per run, then the report."""
    load_plugins()
    return run_plan(plan)


def runs(runs_dir: Path = DEFAULT_RUNS_DIR) -> list[RunState]:
    """The state of every run folder under `runs_dir` (pending, running with its clock and ETA, ...)."""
    return run_states(runs_dir)


def parity(plan: Plan, steps: int = 20, out: Path = Path("reports/parity")) -> ParityOutcome:
    """Each strategy trains `steps` steps from the baseline's init on its data; losses compared."""
    load_plugins()
    return run_parity(plan, steps, out)


def report(runs_dir: Path = DEFAULT_RUNS_DIR, out: Path = DEFAULT_REPORT) -> Path:
    """The HTML comparison (and its CSV/JSON exports) from the result files under `runs_dir`."""
    load_plugins()
    from harness.orchestrate.preflight import check_file
    from harness.report import render_report

    check_file(out, "--out")
    return render_report(runs_dir, out)


def fit(plan: FitPlan) -> dict:
    """Fit the loss law of this recipe on `plan.data` from a grid of short runs (resuming a stopped fit of
    the same key); writes and returns the fit document."""
    load_plugins()
    from harness.orchestrate.fit import prepare
    from harness.orchestrate.fit_runs import run_fit

    document = run_fit(plan, prepare(plan))
    from harness.report.fit_page import render_fit_page

    render_fit_page(document, plan.out / f"{document['key']}.html")
    return document


def answer(plan: AnswerPlan) -> dict:
    """Per memory size of the GPU, the best (lowest expected loss) and the biggest (strategy, size) that
    train in the budget: speeds measured here for the candidates that decide it, predicted for the rest
    (or all, predict-only); with `plan.train`, the best one trained. Writes and returns the answer
    document, and renders its page beside it."""
    load_plugins()
    from harness.orchestrate.answer_runs import answer as run

    document = run(plan)
    from harness.report.render import render_answer_page

    render_answer_page(document, plan.out.with_suffix(".html"))
    return document


def capacity(plan: CapacityPlan) -> dict:
    """Per strategy and GPU memory size, the largest model of the ladder it trains (predicted, and
    confirmed by real runs on CUDA unless predict-only); writes and returns the capacity document, and
    renders its page beside it."""
    load_plugins()
    document = run_capacity(plan)
    from harness.report.render import render_capacity_page

    render_capacity_page(document, plan.out.with_suffix(".html"))
    return document
