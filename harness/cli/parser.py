"""The command line's grammar, and its translation into a typed `Plan`: nothing here runs anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.flags import add_flags, given
from harness.core.errors import UserError
from harness.core.options import read_list
from harness.core.overrides import OVERRIDE_KEYS
from harness.core.presets import LADDER, ModelConfig
from harness.core.recipe import DEFAULT_BUDGET, Recipe, RunConfig
from harness.orchestrate.answer_plan import AnswerPlan
from harness.orchestrate.capacity import CapacityPlan
from harness.orchestrate.fit import FitPlan
from harness.orchestrate.launch_options import LaunchOptions
from harness.orchestrate.launchers import option_classes
from harness.orchestrate.plan import DEFAULT_REPORT, DEFAULT_RUNS_DIR, Plan, runs_on_cuda


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


_PLAN_FIELDS = ("runs_dir", "quiet", "allow_slow")  # the plan's settings every running command has


def _run_options(p: argparse.ArgumentParser, plan_fields: tuple[str, ...] = _PLAN_FIELDS) -> None:
    """Every field of the run description, grouped as it is nested, and the plan's own settings."""
    for cls, title in (
        (Recipe, "the recipe (identical across the strategies of a comparison)"),
        (ModelConfig, "the model's shape (default: the preset's)"),
        (RunConfig, "how this run executes the recipe"),
    ):
        add_flags(p.add_argument_group(title), cls)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set any field above by its name (strict; wins over its flag): " + ", ".join(OVERRIDE_KEYS),
    )
    add_flags(p, Plan, plan_fields)


def _launch_options(p: argparse.ArgumentParser) -> None:
    add_flags(p, LaunchOptions)
    for cls in option_classes().values():  # each launcher's own settings, one flag per field
        add_flags(p.add_argument_group(f"{cls.label} launcher"), cls)


def _runs_parser(sub) -> None:
    runs = sub.add_parser("runs", help="the state of every run under a runs folder (also while a sweep runs)")
    runs.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    runs.add_argument("--json", action="store_true", help="machine-readable output")


def _strategies(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategies", default=None, help="comma-separated, or all (default: the mission's four)")


def _bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="train one strategy within the budget; write its run folder")
    bench.add_argument(
        "--strategy", default=None, help="a strategy or a + combination (see `harness list`); default amp"
    )
    bench.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="RUN_ID",
        help="continue an interrupted run from its latest good checkpoint",
    )
    _run_options(bench)


def _sweep_parser(sub) -> None:
    sweep = sub.add_parser("sweep", help="run several strategies one after another, then render the report")
    _strategies(sweep)
    sweep.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="where the report goes")
    _launch_options(sweep)
    _run_options(sweep, (*_PLAN_FIELDS, "repeats"))


def _parity_parser(sub) -> None:
    parity = sub.add_parser("parity", help="train N steps per strategy from one init; compare with amp")
    _strategies(parity)
    parity.add_argument("--steps", type=int, default=20, help="optimizer steps per strategy")
    parity.add_argument("--out", type=Path, default=Path("reports/parity"), help="the parity record's folder")
    _run_options(parity)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=sys.modules["harness.cli"].__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _bench_parser(sub)
    _sweep_parser(sub)
    _parity_parser(sub)
    _runs_parser(sub)
    report = sub.add_parser("report", help="render the HTML comparison from saved result files")
    report.add_argument("--runs", type=Path, default=DEFAULT_RUNS_DIR)
    report.add_argument("--out", type=Path, default=DEFAULT_REPORT)
    sub.add_parser("list", help="strategies and presets, with each preset's predicted memory per strategy")
    _capacity_parser(sub)
    answer = sub.add_parser(
        "answer", help="the best and the biggest model each strategy trains on a GPU in the budget"
    )
    add_flags(answer, AnswerPlan)
    answer.add_argument("--json", action="store_true", help="print the answer document")
    fit = sub.add_parser("fit", help="fit the loss law of this recipe on your data from a grid of short runs")
    add_flags(fit, FitPlan)
    env = sub.add_parser("env", help="what this machine has, and which strategies can run here")
    env.add_argument("--strategies", default=None, help="exit 1 if any of these cannot run here")
    env.add_argument("--json", action="store_true", help="machine-readable output")
    prepare = sub.add_parser("prepare", help="tokenize and cache a real corpus (outside any training clock)")
    add_flags(prepare, Recipe, ("preset", "data", "tokenizer"))
    prepare.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser


def _capacity_parser(sub) -> None:
    capacity = sub.add_parser("capacity", help="the largest model each strategy trains in a GPU memory size")
    _strategies(capacity)
    capacity.add_argument(
        "--gpu-memory-gib", required=True, help="comma-separated sizes in GiB, e.g. 24,40,80"
    )
    capacity.add_argument(
        "--presets", default=None, help=f"the ladder to climb (default: {','.join(LADDER)})"
    )
    capacity.add_argument(
        "--predict-only", action="store_true", help="the memory model alone, no runs (any machine)"
    )
    capacity.add_argument(
        "--host-memory-gib",
        type=float,
        default=None,
        help="host memory a size may need (default: what is free here; predict-only: no limit)",
    )
    capacity.add_argument("--precision", default="bf16", choices=("bf16", "fp16", "fp32"))
    capacity.add_argument("--budget", default=DEFAULT_BUDGET, help="for the tokens a size sees in it")
    capacity.add_argument("--out", type=Path, default=Path("reports/capacity.json"))
    capacity.add_argument("--json", action="store_true", help="print the capacity document")
    capacity.add_argument("--quiet", action="store_true", help="no live progress display")


def strategy_list(text: str | None, device: str = "auto") -> tuple[str, ...]:
    """'amp, adam8bit+act_ckpt' -> names; None -> the default sweep; 'all' -> every registered strategy
    that can run on `device` (experimental ones included). Blank entries are refused, so every command
    answers one list the same way."""
    import strategies

    if text is None:
        return tuple(strategies.default_sweep())
    if text.strip() == "all":
        return tuple(strategies.every_strategy(cuda=runs_on_cuda(device)))
    names = read_list(text, str, f"--strategies {text!r}")
    if not names:
        raise UserError("--strategies is empty: name at least one, e.g. amp,adam8bit")
    return names


def device_of(args: argparse.Namespace) -> str:
    """The device the command line asks for (`--device`, else its default)."""
    return given(args, RunConfig, ("device",)).get("device", "auto")


def launch_from_args(args: argparse.Namespace) -> LaunchOptions:
    """The sweep's launch options (bench and parity run on this machine, one run at a time)."""
    settings = tuple(cls(**given(args, cls)) for cls in option_classes().values())
    return LaunchOptions(**given(args, LaunchOptions), settings=settings)


def plan_from_args(args: argparse.Namespace, names: tuple[str, ...]) -> Plan:
    """The run options of bench, sweep and parity, as a Plan: each flag read by its field's declaration,
    `--set` texts by theirs (they win), everything checked once when the dataclasses are built."""
    values = {k: v for cls in (Recipe, ModelConfig, RunConfig) for k, v in given(args, cls).items()}
    return Plan.of(
        names,
        overrides=tuple(args.overrides),
        report=getattr(args, "report", None),
        launch=launch_from_args(args),
        **given(args, Plan),
        **values,
    )


def fit_plan_from_args(args: argparse.Namespace) -> FitPlan:
    return FitPlan(**given(args, FitPlan))


def answer_plan_from_args(args: argparse.Namespace) -> AnswerPlan:
    return AnswerPlan(**given(args, AnswerPlan))


def size_list(text: str, flag: str) -> tuple[float, ...]:
    """'24,40,80' -> sizes; one line naming the flag for anything else."""

    def gib(part: str) -> float:
        try:
            return float(part)
        except ValueError:
            raise UserError(f"{flag} {text!r}: give comma-separated numbers of GiB, e.g. 24,40,80") from None

    sizes = read_list(text, gib, f"{flag} {text!r}")
    if not sizes:
        raise UserError(f"{flag} {text!r} names nothing: give sizes of GiB, e.g. 24,40,80")
    return sizes


def capacity_plan_from_args(args: argparse.Namespace) -> CapacityPlan:
    presets = LADDER if args.presets is None else read_list(args.presets, str, f"--presets {args.presets!r}")
    return CapacityPlan(
        strategies=strategy_list(args.strategies),
        gpu_memory_gib=size_list(args.gpu_memory_gib, "--gpu-memory-gib"),
        presets=presets,
        predict_only=args.predict_only,
        host_memory_gib=args.host_memory_gib,
        precision=args.precision,
        budget=args.budget,
        out=args.out,
        quiet=args.quiet,
        command=tuple(sys.argv),
    )
