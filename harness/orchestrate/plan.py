"""What a user asks for, typed: a `Plan` (built by the CLI from its arguments, or by hand through the
Python API), and its expansion into one validated `RunConfig` per run. Every check of the user's input
happens here, in the parent, before any run starts."""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import strategies
from harness.core.errors import UserError
from harness.core.options import check_fields, option
from harness.core.overrides import build_run_config, parse_overrides
from harness.core.ranges import within
from harness.core.recipe import BASELINE, RunConfig
from harness.data import validate_source
from harness.metrics.sinks import check_trackers
from harness.orchestrate.launch_options import LaunchOptions
from harness.orchestrate.preflight import CACHE, check_folder
from harness.orchestrate.step_estimate import check_first_step

DEFAULT_RUNS_DIR = Path("reports/runs")
DEFAULT_REPORT = Path("reports/index.html")


@dataclass(frozen=True)
class Plan:
    """A bench (one strategy), a sweep (several, with repeats) or the runs of a parity check: one run
    description, validated when it was built, and what to run it as. Each run of the plan is the
    description with its own strategy and run id."""

    run: RunConfig  # the run description (its strategy and run id are each run's own)
    strategies: tuple[str, ...] = ("amp",)
    repeats: int = field(
        default=1, metadata=option("runs per strategy (the report shows the spread)", within(1, 10_000))
    )
    runs_dir: Path = field(default=DEFAULT_RUNS_DIR, metadata=option("where run folders go"))
    report: Path | None = None  # where a sweep renders its report (None: no report)
    quiet: bool = field(default=False, metadata=option("no live progress display"))
    launch: LaunchOptions = field(default_factory=LaunchOptions)  # launcher, GPUs, runs at once, Slurm
    allow_slow: bool = field(
        default=False,
        metadata=option("start a CPU run whose first step is estimated to take minutes (refused otherwise)"),
    )

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def of(
        cls,
        strategies: tuple[str, ...] = ("amp",),
        *,
        overrides: tuple[str, ...] = (),
        repeats: int = 1,
        runs_dir: Path = DEFAULT_RUNS_DIR,
        report: Path | None = None,
        quiet: bool = False,
        launch: LaunchOptions | None = None,
        allow_slow: bool = False,
        **values: Any,
    ) -> Plan:
        """The plan from typed values, as the command line builds it: `values` are the run description's
        fields by name (preset, budget as people write it, data, seed, device, micro_batch, lr, ...; see
        `harness.core.overrides`), `overrides` `--set KEY=VALUE` texts, which win. UserError for any bad
        value."""
        values.setdefault("command", tuple(sys.argv))
        run = build_run_config(
            strategy=strategies[0].strip() if strategies and strategies[0].strip() else BASELINE,
            overrides=parse_overrides(list(overrides)),
            **values,
        )
        return cls(run, tuple(strategies), repeats, Path(runs_dir), report, quiet, launch or LaunchOptions(),
                   allow_slow)  # fmt: skip


def new_run_id(strategy: str, preset: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """The time, what runs, and a random part: 6 hex digits, drawn again until no id in `taken` (the
    plan's others) has it, so that the runs of one plan never collide however many there are."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    while True:
        run_id = f"{stamp}-{strategy.replace('+', '-')}-{preset}-{secrets.token_hex(3)}"
        if run_id not in taken:
            return run_id


def expand(plan: Plan, *, runs_here: bool = True) -> list[RunConfig]:
    """One RunConfig per run, in queue order: the strategies in the order given, repeats interleaved
    (a, b, a, b rather than a, a, b, b), so that drift over a long sweep, or one GPU's quirks, do not all
    land on one strategy; UserError (one line) for anything that cannot work, before anything starts."""
    names = [strategies.resolve(name).name for name in plan.strategies if name.strip()]
    if not names:
        raise UserError("no strategy named: give at least one, e.g. amp,adam8bit")
    check_trackers(plan.run.trackers)
    if runs_here:  # runs on a cluster's nodes are checked there, by their worker
        check_device(plan.run.device, names)
        check_machine(names)
    configs: list[RunConfig] = []
    taken: set[str] = set()
    for name in [name for _ in range(plan.repeats) for name in names]:
        run_id = new_run_id(name, plan.run.recipe.preset, taken)
        configs.append(replace(plan.run, strategy=name, run_id=run_id))
        taken.add(run_id)
    recipe = configs[0].recipe
    validate_source(recipe)
    if recipe.data != "synthetic":
        from harness.core.cache import cache_root

        check_folder(cache_root(), CACHE)
    if runs_here and not runs_on_cuda(plan.run.device):
        check_first_step(configs[0], allow_slow=plan.allow_slow)
    return configs


def runs_on_cuda(device: str) -> bool:
    """Whether a run asked for on `device` ("auto", "cuda", "cpu") trains on a GPU."""
    if device != "auto":
        return device.startswith("cuda")
    import torch

    return torch.cuda.is_available()


def check_device(device: str, names: list[str]) -> None:
    """A CUDA device that is not there, or a CUDA-only strategy on the CPU, is found here, not in a run."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda, but torch sees no CUDA device here: use --device cpu (or auto)")
    if not runs_on_cuda(device):
        for name in names:
            if not strategies.resolve(name).runs_on_cpu:
                raise UserError(f"strategy {name} needs a CUDA device, and this run would be on the CPU")


def check_machine(names: list[str]) -> None:
    """A fault of this machine that a strategy's parts know of (see Plugin.preflight), found here."""
    for name in names:
        for part in strategies.resolve(name).parts:
            problem = part.preflight()
            if problem:
                raise UserError(f"strategy {name} cannot run here: {problem}")


def prepare_data(cfg: RunConfig) -> None:
    """Tokenize a real corpus here, before any run starts: outside every clock, with progress on the
    terminal, and a bad corpus is a one-line error rather than a failed run."""
    if cfg.recipe.data != "synthetic":
        from harness.data import open_source

        recipe = cfg.recipe
        source = open_source(recipe, progress=lambda text: print(text, file=sys.stderr, flush=True))
        source.val_tokens(recipe.eval_seqs, recipe.eval_window)  # enough held out?
