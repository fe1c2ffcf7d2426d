"""`harness fit`: the loss law of this recipe on this data, fitted on its own short runs.

A grid of token-budgeted runs (`law_grid`: IsoFLOP profiles around the prior's optimum, the top compute as
high as the fit's share of the budget allows), each a normal run in a child process whose schedule ends
at its own token count; their final validation losses fitted by approach 3 with a bootstrap over runs
(`law_fit`) and cross-checked by approach 2 (each profile's parabola). The document is keyed by what the
law depends on (the recipe's training settings, the data's identity, its tokenizer) and rewritten after
every run: a stopped fit keeps its runs, and the next `harness fit` for the same key trains only the rest.
Every later answer for that recipe and data reads it (`stored_law`)."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.capacity import law_fit
from harness.capacity.law import PRIOR
from harness.capacity.law_grid import GridRun, GridTooLong, Rung, plan_grid
from harness.core.errors import UserError
from harness.core.options import INTERNAL_FIELD, check_fields, option
from harness.core.overrides import build_run_config
from harness.core.presets import CPU_FIT_LADDER, LADDER, get_preset
from harness.core.ranges import within
from harness.core.recipe import DEFAULT_BUDGET, command_budget_s
from harness.core.serialize import fingerprint
from harness.core.units import parse_duration
from harness.model import flops_per_token, param_count

FIT_KIND, SCHEMA_VERSION = "fit", 1
DEFAULT_FIT_BUDGET = "5%"
MIN_SIZES = 3  # sizes a fit's ladder needs at the least
STRATEGY = "amp"  # the fit's runs: the recipe's plain strategy (every strategy trains the same math)
# What the law does not depend on: the size, the length and the batch of a run (the law's own inputs, or
# the grid's), its seed, how it is evaluated, and how it is executed.
NOT_THE_LAW = (
    "preset",
    "model",
    "global_batch_tokens",
    "lr",
    "budget_s",
    "eval_tokens",
    "eval_points",
    "targets",
    "seed",
    "precision",
    "compile",
    "data",
    "tokenizer",
)
RUN_OVERHEAD_S = {"cpu": 6.0, "cuda": 40.0}  # a run's start, warm-up and evaluations (stated, not timed)
CPU_TRAIN_EFFICIENCY = 0.14  # a CPU step's share of its matrix-multiply rate (the tiny preset, measured)
GPU_TRAIN_EFFICIENCY = 0.35  # a stated default for a GPU run of the fit's small sizes


@dataclass(frozen=True)
class FitPlan:
    data: str = field(default="synthetic", metadata=option("the data to fit on, as bench takes it"))
    budget: str = field(
        default=DEFAULT_BUDGET, metadata=option("the answer's training budget, e.g. 24h", metavar="DURATION")
    )
    fit_budget: str = field(
        default=DEFAULT_FIT_BUDGET,
        metadata=option("the fit's time: a share of the budget (5%) or a duration (30m)", metavar="SHARE"),
    )
    presets: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "the sizes the fit may train",
            shown_default="on a GPU the GPT family, on a CPU "
            f"{len(CPU_FIT_LADDER)} shapes of the tiny family",
        ),
    )
    device: str = field(default="auto", metadata=option("where the fit's runs train: auto, cuda, cpu"))
    resamples: int = field(
        default=law_fit.RESAMPLES, metadata=option("bootstrap refits of the law", within(10, 100_000))
    )
    runs_dir: Path = field(default=Path("reports/fit-runs"), metadata=option("the fit's run folders"))
    out: Path = field(default=Path("reports/fits"), metadata=option("the folder fit documents are kept in"))
    quiet: bool = field(default=False, metadata=option("no live progress display"))
    command: tuple[str, ...] = field(default_factory=lambda: tuple(sys.argv), metadata=INTERNAL_FIELD)

    def __post_init__(self) -> None:
        check_fields(self)


def fit_budget_s(text: str, budget_s: float) -> float:
    """'5%' of the budget, or a duration; UserError for anything else."""
    if text.strip().endswith("%"):
        try:
            share = float(text.strip()[:-1])
        except ValueError:
            share = math.nan
        if not 0 < share <= 100:
            raise UserError(f"--fit-budget {text!r}: give a share above 0% and at most 100%, e.g. 5%")
        return budget_s * share / 100
    try:
        return parse_duration(text)
    except (UserError, ValueError):
        raise UserError(
            f"--fit-budget {text!r}: give a share of the budget (5%) or a duration (30m)"
        ) from None


def law_key(data: str, device_kind: str, presets: tuple[str, ...] = ()) -> tuple[str, dict]:
    """The key a fit is stored under, and what it is made of: the recipe's training settings, the family's
    sequence length and vocabulary, the data's identity (its content, not its path) and tokenizer."""
    from harness.data import open_source

    base = build_run_config(strategy=STRATEGY, preset=_base_preset(device_kind, presets), data=data)
    recipe = base.recipe
    described = open_source(recipe).describe()
    settings = {k: v for k, v in asdict(recipe).items() if k not in NOT_THE_LAW}
    identity = {
        "recipe": {**settings, "seq_len": recipe.model.seq_len, "vocab_size": recipe.model.vocab_size},
        "data": described.get("fingerprint", described),
        "tokenizer": _tokenizer_identity(described.get("tokenizer", recipe.tokenizer)),
    }
    return fingerprint(identity)[:16], identity


def _tokenizer_identity(tokenizer):
    """A tokenizer by its content (a trained one's fingerprint), never by where its file is cached."""
    return tokenizer.get("fingerprint", tokenizer) if isinstance(tokenizer, dict) else tokenizer


def _base_preset(device_kind: str, presets: tuple[str, ...]) -> str:
    return presets[0] if presets else ("tiny" if device_kind == "cpu" else LADDER[0])


def rungs(plan: FitPlan, device_kind: str) -> list[Rung]:
    """The sizes the fit may train, each with the speed its time is planned at (predicted: a stated share
    of this CPU's measured matrix-multiply rate, or of the GPU's peak)."""
    shapes = (
        [(name, name, {}) for name in plan.presets]
        if plan.presets
        else (CPU_FIT_LADDER if device_kind == "cpu" else [(name, name, {}) for name in LADDER])
    )
    rate = _flop_rate(device_kind)
    found = []
    for name, preset, shape in shapes:
        p = get_preset(preset)
        model = build_run_config(strategy=STRATEGY, preset=preset, **shape).recipe.model
        found.append(
            Rung(
                name,
                preset,
                param_count(model),
                p.global_batch_tokens,
                model.seq_len,
                rate / flops_per_token(model),
                shape,
            )
        )
    return found


def _flop_rate(device_kind: str) -> float:
    if device_kind == "cpu":
        from harness.orchestrate.step_estimate import matmul_flops_per_s

        return matmul_flops_per_s() * CPU_TRAIN_EFFICIENCY
    from harness.orchestrate.answer_device import target_for

    peak = target_for(None, False).device.peak_tflops
    if peak is None:
        raise UserError("the GPU here has no peak in the GPU table, so the fit's time cannot be planned")
    return peak * 1e12 * GPU_TRAIN_EFFICIENCY


def device_kind(device: str) -> str:
    from harness.orchestrate.plan import check_device, runs_on_cuda

    if device not in ("auto", "cuda", "cpu"):
        raise UserError(f"--device {device!r}: give auto, cuda or cpu")
    check_device(device, [STRATEGY])  # --device cuda without one: said here, in its words
    return "cuda" if runs_on_cuda(device) else "cpu"


@dataclass
class FitSetup:
    """What a fit is, checked before anything runs."""

    budget_s: float
    fit_budget_s: float
    kind: str
    key: str
    identity: dict
    grid: list[GridRun]

    @property
    def path_in(self) -> str:
        return f"{self.key}.json"


def _check_presets(presets: tuple[str, ...]) -> None:
    """Each named once, of one family (sequence length and vocabulary), and at least MIN_SIZES of them."""
    for name in presets:
        get_preset(name)
    from harness.orchestrate.capacity import once

    once("--presets", presets)
    families = {(get_preset(n).model.seq_len, get_preset(n).model.vocab_size) for n in presets}
    if len(families) > 1:
        raise UserError(
            "--presets mixes sequence lengths or vocabularies: a law is of one family, e.g. "
            "the GPT ladder's sizes alone"
        )
    if presets and len(presets) < MIN_SIZES:
        raise UserError(
            f"--presets names {len(presets)}: a fit needs {MIN_SIZES} sizes or more (a "
            "profile's minimum lies between sizes)"
        )


def prepare(plan: FitPlan) -> FitSetup:
    """The budget, the fit's share, the key and the grid; UserError (one line) for what cannot work,
    among them a fit budget too short for the shortest grid (with its predicted time)."""
    from harness.data import validate_source

    budget_s = command_budget_s(plan.budget)
    share_s = fit_budget_s(plan.fit_budget, budget_s)
    if share_s > budget_s:
        raise UserError(
            f"--fit-budget {plan.fit_budget} is more than the --budget {plan.budget} it is a share "
            "of: give a share such as 5%, or a shorter duration"
        )
    kind = device_kind(plan.device)
    _check_presets(plan.presets)
    from harness.orchestrate.preflight import check_folder

    check_folder(plan.out, "--out")  # written after every run: a folder this process may write in
    check_folder(plan.runs_dir, "--runs-dir")
    base = build_run_config(strategy=STRATEGY, preset=_base_preset(kind, plan.presets), data=plan.data)
    validate_source(base.recipe)
    ladder = rungs(plan, kind)
    overhead = RUN_OVERHEAD_S[kind]
    try:
        grid = plan_grid(PRIOR, ladder, share_s, overhead_s=overhead)
    except GridTooLong as exc:
        need = math.ceil(100 * exc.seconds / budget_s)
        more = (
            f"give --fit-budget {need}% or more"
            if need <= 100
            else "that is more than the whole budget: give a longer --budget, or smaller --presets"
        )
        raise UserError(
            f"--fit-budget {plan.fit_budget} ({share_s:.0f} s) is too short: {exc}; {more}"
        ) from None
    key, identity = law_key(plan.data, kind, plan.presets)
    return FitSetup(budget_s, share_s, kind, key, identity, grid)
