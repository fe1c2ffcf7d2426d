"""The command line's grammar, and its translation into a typed `Plan`: nothing here runs anything."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from harness.core.errors import UserError
from harness.core.overrides import OVERRIDE_KEYS
from harness.core.presets import LADDER, PRESETS
from harness.core.recipe import DEFAULT_BUDGET
from harness.orchestrate.capacity import CapacityPlan
from harness.orchestrate.launch_options import LaunchOptions
from harness.orchestrate.launchers import option_classes
from harness.orchestrate.plan import DEFAULT_REPORT, DEFAULT_RUNS_DIR, Plan, runs_on_cuda


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="gpt2-124m", help=f"model size: {', '.join(PRESETS)}")
    p.add_argument("--budget", default=DEFAULT_BUDGET, help="training-clock budget, e.g. 30s, 10m, 2h, 24h")
    p.add_argument(
        "--data", default="synthetic", help="synthetic, a local file/folder, or hf:<id>[:<config>]"
    )
    p.add_argument(
        "--tokenizer", default=None, help="tokenizer.json for a real corpus (else a BPE is trained)"
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    p.add_argument("--micro-batch", default="auto", help="sequences per micro-batch, or auto (fit on CUDA)")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile for every strategy that supports it (default: on for CUDA)",
    )
    p.add_argument("--warmup-steps", type=int, default=None, help="untimed warm-up steps (default 2)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    p.add_argument(
        "--allow-slow",
        action="store_true",
        help="start a CPU run even if its first step is estimated to take minutes (refused otherwise)",
    )
    p.add_argument(
        "--gpu-memory-gib",
        type=float,
        default=None,
        help="cap the GPU memory the run may use, e.g. 24 to stand for a 24 GiB card",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field (strict): " + ", ".join(OVERRIDE_KEYS),
    )
    p.add_argument(
        "--tracker", dest="trackers", action="append", default=[], help="also log to a tracker: tensorboard"
    )
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR, help="where run folders go")
    p.add_argument("--quiet", action="store_true", help="no live progress display")


def _launch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--launcher",
        default="local",
        help="local (this machine, the default), submitit-local (submitit jobs run as local processes), "
        "slurm (one Slurm job per run)",
    )
    p.add_argument(
        "--gpus", default=None, help="all, or GPU indices such as 0,1,3: one run per GPU at a time"
    )
    p.add_argument(
        "--parallel", type=int, default=None, help="runs at once on the CPU, each on its own share of cores"
    )
    for cls in option_classes().values():  # each launcher's own settings, one flag per field
        for f in fields(cls):
            p.add_argument(
                f.metadata["flag"],
                dest=_dest(cls, f.name),
                default=f.default,
                metavar=f.name.upper(),
                help=f.metadata["help"],
            )


def _dest(cls: type, name: str) -> str:
    return f"{cls.__name__}.{name}"


def _runs_parser(sub) -> None:
    runs = sub.add_parser("runs", help="the state of every run under a runs folder (also while a sweep runs)")
    runs.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    runs.add_argument("--json", action="store_true", help="machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=sys.modules["harness.cli"].__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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

    sweep = sub.add_parser("sweep", help="run several strategies one after another, then render the report")
    sweep.add_argument(
        "--strategies", default=None, help="comma-separated, or all (default: the mission's four)"
    )
    sweep.add_argument(
        "--repeats", type=int, default=1, help="runs per strategy (the report shows the spread)"
    )
    sweep.add_argument("--report", type=Path, default=DEFAULT_REPORT)
    _launch_options(sweep)
    _run_options(sweep)

    parity = sub.add_parser("parity", help="train N steps per strategy from one init; compare with amp")
    parity.add_argument(
        "--strategies", default=None, help="comma-separated, or all (default: the mission's four)"
    )
    parity.add_argument("--steps", type=int, default=20)
    parity.add_argument("--out", type=Path, default=Path("reports/parity"))
    _run_options(parity)

    _runs_parser(sub)
    report = sub.add_parser("report", help="render the HTML comparison from saved result files")
    report.add_argument("--runs", type=Path, default=DEFAULT_RUNS_DIR)
    report.add_argument("--out", type=Path, default=DEFAULT_REPORT)

    sub.add_parser("list", help="strategies and presets, with each preset's predicted memory per strategy")

    capacity = sub.add_parser("capacity", help="the largest model each strategy trains in a GPU memory size")
    capacity.add_argument(
        "--strategies", default=None, help="comma-separated, or all (default: the mission's four)"
    )
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

    env = sub.add_parser("env", help="what this machine has, and which strategies can run here")
    env.add_argument("--strategies", default=None, help="exit 1 if any of these cannot run here")
    env.add_argument("--json", action="store_true", help="machine-readable output")

    prepare = sub.add_parser("prepare", help="tokenize and cache a real corpus (outside any training clock)")
    prepare.add_argument("--data", required=True)
    prepare.add_argument("--preset", default="gpt2-124m")
    prepare.add_argument("--tokenizer", default=None)
    prepare.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser


def strategy_list(text: str | None, device: str = "auto") -> tuple[str, ...]:
    """'amp, adam8bit+act_ckpt' -> names; None -> the default sweep; 'all' -> every registered strategy
    that can run on `device` (experimental ones included). Blank entries are refused, so every command
    answers one list the same way."""
    import strategies

    if text is None:
        return tuple(strategies.default_sweep())
    if text.strip() == "all":
        return tuple(strategies.every_strategy(cuda=runs_on_cuda(device)))
    names = [n.strip() for n in text.split(",")]
    if not any(names):
        raise UserError("--strategies is empty: name at least one, e.g. amp,adam8bit")
    if not all(names):
        raise UserError(f"--strategies {text!r} has an empty entry: write names separated by single commas")
    return tuple(names)


def _micro_batch(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"--micro-batch must be a positive integer or auto, got {text!r}") from None
    if value < 1:
        raise UserError(f"--micro-batch must be a positive integer or auto, got {text!r}")
    return value


def launch_from_args(args: argparse.Namespace) -> LaunchOptions:
    """The sweep's launch options (bench and parity run on this machine, one run at a time)."""
    if not hasattr(args, "launcher"):
        return LaunchOptions()
    settings = tuple(
        cls(**{f.name: getattr(args, _dest(cls, f.name)) for f in fields(cls)})
        for cls in option_classes().values()
    )
    return LaunchOptions(launcher=args.launcher, gpus=args.gpus, parallel=args.parallel, settings=settings)


def plan_from_args(args: argparse.Namespace, names: tuple[str, ...]) -> Plan:
    """The run options of bench, sweep and parity, as a Plan."""
    return Plan.of(
        names,
        preset=args.preset,
        budget=args.budget,
        data=args.data,
        overrides=tuple(args.overrides),
        recipe={"tokenizer": args.tokenizer, "seed": args.seed, "compile": args.compile},
        device=args.device,
        micro_batch=_micro_batch(args.micro_batch),
        warmup_steps=args.warmup_steps,
        max_steps=args.max_steps,
        gpu_memory_gib=args.gpu_memory_gib,
        trackers=tuple(args.trackers),
        command=tuple(sys.argv),
        repeats=getattr(args, "repeats", 1),
        runs_dir=args.runs_dir,
        report=getattr(args, "report", None),
        quiet=args.quiet,
        launch=launch_from_args(args),
        allow_slow=getattr(args, "allow_slow", False),
    )


def size_list(text: str, flag: str) -> tuple[float, ...]:
    """'24,40,80' -> sizes; one line naming the flag for anything else."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"{flag} {text!r}: give comma-separated numbers of GiB, e.g. 24,40,80") from None


def capacity_plan_from_args(args: argparse.Namespace) -> CapacityPlan:
    presets = LADDER if args.presets is None else tuple(p.strip() for p in args.presets.split(","))
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
