"""The measured runs the throughput model learns a device's speed from: each run's executed FLOP/s (its
model FLOPs plus what it recomputed, times its steady tokens/s), kept only where it stands for the recipe a
prediction is for, and chosen by what is nearest to the candidate.

A run counts when it ended `ok` with a steady throughput over at least `MIN_STEPS` optimizer steps, on the
recipe's precision (bf16 on a GPU, fp32 on a CPU) and, on a GPU, compiled. It is used for a candidate of the
same device, global batch and sequence length, in this order: the candidate's own strategy at the nearest
size; its executor with other transforms (an offloading executor's host work is then inside the figure, as
in the candidate's own); the baseline (`amp`, no host work: the offload's host work is added)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import strategies
from harness.core.errors import UserError
from harness.core.presets import ModelConfig
from harness.core.recipe import BASELINE
from harness.core.results import CorruptResult
from harness.metrics.plausible import speed_problem
from harness.metrics.readback import read_result
from harness.model import flops_per_token, param_count

MIN_STEPS = 3  # a steady median needs steps after the first


@dataclass(frozen=True)
class Calibration:
    """A measured run the model learns a device's speed from."""

    device: str  # the GPU's name as torch reports it, or "cpu"
    strategy: str
    executor: str
    preset: str
    params: int
    global_batch_tokens: int
    seq_len: int
    tokens_per_s: float
    flop_rate: float  # the executed FLOP/s it sustained (its host work inside, if it did any)
    run: str  # its run folder

    def to_dict(self) -> dict:
        return asdict(self)

    def says(self) -> str:
        speed = f"{self.tokens_per_s:,.0f} tokens/s"
        return f"run {self.run}: {self.strategy} at {self.preset} on {self.device}, {speed}"


def executed_flops_per_token(model: ModelConfig, spec: strategies.StrategySpec) -> tuple[int, int]:
    """(model FLOPs per token, FLOPs recomputed per token): a block's forward is 2 x 12 d^2 per layer for
    its matmuls plus 4 d T for attention's; a checkpointing transform runs a share of it again."""
    block_forward = model.n_layer * (24 * model.d_model**2 + 4 * model.d_model * model.seq_len)
    share = min(1.0, sum(t.recompute_forward for t in spec.transforms))
    return flops_per_token(model), round(share * block_forward)


def measured(
    device: str,
    strategy: str,
    preset: str,
    model: ModelConfig,
    global_batch_tokens: int,
    tokens_per_s: float,
    run: str,
) -> Calibration:
    """A calibration from a run's figures (as a measuring run of the answer hands them over)."""
    spec = strategies.resolve(strategy)
    executed = sum(executed_flops_per_token(model, spec))
    return Calibration(device, spec.name, spec.executor.name, preset, param_count(model), global_batch_tokens,
                       model.seq_len, tokens_per_s, executed * tokens_per_s, run)  # fmt: skip


def read_calibrations(folders: list[Path]) -> tuple[list[Calibration], list[str]]:
    """(every run under `folders` (`<folder>/*/result.json`, in order) that stands for its recipe, a line
    for each one set aside: a damaged file, or a speed physics rules out on its device)."""
    found, set_aside = [], []
    for folder in folders:
        for path in sorted(Path(folder).glob("*/result.json")):
            try:
                calibration = _from_result(path)
            except (CorruptResult, UserError, TypeError) as exc:
                calibration = f"{exc}" if str(path) in str(exc) else f"{path}: {exc}"
            if isinstance(calibration, str):
                set_aside.append(f"not learnt from: {calibration}")
            elif calibration is not None:
                found.append(calibration)
    return found, set_aside


def _from_result(path: Path) -> Calibration | str | None:
    """The run's calibration; None for a run that does not stand for its recipe; why, for one whose speed
    was set aside. CorruptResult or UserError for a damaged file."""
    result, notes = read_result(path)  # figures set aside are None, and so not usable here
    recipe, s = result.recipe, result.summary
    if not isinstance(recipe.get("model"), dict) or not isinstance(result.strategy.get("name"), str):
        return None
    model = ModelConfig(**recipe["model"])
    device = result.environment.get("gpu_name") or "cpu"
    on_gpu = device != "cpu"
    usable = (
        result.status == "ok"
        and (s.get("steps") or 0) >= MIN_STEPS
        and recipe.get("precision") == ("bf16" if on_gpu else "fp32")
        and (recipe.get("compile") or not on_gpu)
        and isinstance(recipe.get("global_batch_tokens"), int)
    )
    if not usable:
        return None
    if s.get("steady_tokens_per_s") is None:  # too short to measure one, or set aside (said why)
        return next((n for n in notes if "steady_tokens_per_s" in n), None)
    spec = _strategy(result.strategy["name"])
    if spec is None:
        return f"{path}: strategy {result.strategy['name']!r} is not one this harness knows"
    speed, batch = s["steady_tokens_per_s"], recipe["global_batch_tokens"]
    executed = sum(executed_flops_per_token(model, spec))
    why = speed_problem(speed, executed, device if on_gpu else None)
    if why:
        return f"{path}: summary.steady_tokens_per_s is impossible: {why}"
    return measured(device, spec.name, str(recipe.get("preset", "?")), model, batch, speed, str(path.parent))


def _strategy(name: str):
    try:
        return strategies.resolve(name)
    except UserError:
        return None


def _nearest(runs: list[Calibration], params: int) -> Calibration | None:
    return min(runs, key=lambda c: abs(math.log(c.params / params)), default=None)


def choose_calibration(
    spec: strategies.StrategySpec, model: ModelConfig, device: str, global_batch_tokens: int, calibrations
) -> tuple[Calibration | None, bool]:
    """(the run whose FLOP rate to take, whether the candidate's host work is inside it)."""
    here = [
        c
        for c in calibrations
        if c.device == device and c.global_batch_tokens == global_batch_tokens and c.seq_len == model.seq_len
    ]
    params = param_count(model)
    own = _nearest([c for c in here if c.strategy == spec.name], params)
    if own is not None:
        return own, True
    plain = [c for c in here if not unmodelled(c.strategy)]  # their speed is their executor's
    executor = spec.executor
    kin = _nearest([c for c in plain if c.executor == executor.name], params)
    if kin is not None:
        return kin, executor.host_step is not None
    return _nearest([c for c in plain if c.strategy == BASELINE], params), False


def unmodelled(strategy: str) -> list[str]:
    """What the model leaves out of a strategy's speed, as its transforms say."""
    try:
        transforms = strategies.resolve(strategy).transforms
    except UserError:
        return ["an unknown strategy"]
    return [f"{t.name}: {t.speed_unmodelled}" for t in transforms if t.speed_unmodelled]
