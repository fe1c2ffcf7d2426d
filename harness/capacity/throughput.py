"""The throughput model: the tokens/s a strategy trains a model at on a GPU, predicted where it was not
measured, with every input named in the figure it returns.

    step time = global batch x executed FLOPs per token / (peak x efficiency)  +  exposed host work

- executed FLOPs per token: the model's (6N + attention, `harness.model.flops_per_token`) plus the forward a
  checkpointing transform recomputes in backward, as each transform declares (`recompute_forward`);
- peak: the GPU's dense 16-bit rate (the peak table);
- efficiency: executed FLOP/s over the peak in a measured run of that GPU model (a calibration), the nearest
  size first: a run of the same strategy (its host work is then inside the efficiency: at a fixed global
  batch a step's host work and its compute both grow with the model), else a run of a strategy with no
  host work (the offload strategy's host work is then added); else `DEFAULT_EFFICIENCY`;
- exposed host work of offload executors (`Executor.host_step`): the host optimizer's seconds per
  parameter, benchmarked on this machine, plus the bytes the GPU waits for over the host link at
  `LINK_EFFICIENCY` of its theoretical rate. What crosses the link during compute is said, not added.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import strategies
from harness.core.errors import UserError
from harness.core.presets import ModelConfig
from harness.core.results import CorruptResult, load_result
from harness.metrics.gpus import pcie_gb_s
from harness.metrics.peaks import peak_tflops
from harness.model import flops_per_token, param_count

DEFAULT_EFFICIENCY = 0.40  # of the peak, where no run of the GPU model was measured (H100 amp: 0.43)
LINK_EFFICIENCY = 0.8  # pinned copies reach about 80% of a link's theoretical rate
ASSUMED_LINK = ("PCIe 4.0 x16", pcie_gb_s(4, 16))  # where neither the GPU table nor NVML names the link


@dataclass(frozen=True)
class Device:
    """The GPU a speed is predicted for, and where each of its figures came from."""

    name: str
    peak_tflops: float | None
    peak_source: str | None
    link: str
    link_gb_s: float
    link_source: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Calibration:
    """A measured run the model learns a GPU model's efficiency from."""

    gpu: str
    strategy: str
    preset: str
    params: int
    tokens_per_s: float
    efficiency: float  # executed FLOP/s over the GPU's peak
    run: str  # its run folder

    def to_dict(self) -> dict:
        return asdict(self)


def executed_flops_per_token(model: ModelConfig, spec: strategies.StrategySpec) -> tuple[int, int]:
    """(model FLOPs per token, FLOPs recomputed per token): a block's forward is 2 x 12 d^2 per layer for
    its matmuls plus 4 d T for attention's; a checkpointing transform runs a share of it again."""
    block_forward = model.n_layer * (24 * model.d_model**2 + 4 * model.d_model * model.seq_len)
    share = min(1.0, sum(t.recompute_forward for t in spec.transforms))
    return flops_per_token(model), round(share * block_forward)


def read_calibrations(folders: list[Path]) -> list[Calibration]:
    """Every measured run under `folders` (`<folder>/*/result.json`, in order) that trained steadily on a GPU
    of the peak table: the runs folder first, then the published results."""
    found = []
    for folder in folders:
        for path in sorted(Path(folder).glob("*/result.json")):
            calibration = _calibration(path)
            if calibration is not None:
                found.append(calibration)
    return found


def _calibration(path: Path) -> Calibration | None:
    try:
        result = load_result(path)
        spec = strategies.resolve(result.strategy["name"])
        model = ModelConfig(**result.recipe["model"])
    except (CorruptResult, UserError, KeyError, TypeError):  # not a run the model can read: skipped
        return None
    s, gpu = result.summary, result.environment.get("gpu_name") or ""
    tokens_per_s = s.get("steady_tokens_per_s") or s.get("tokens_per_s")
    peak, _ = peak_tflops(gpu)
    if result.status not in ("ok", "interrupted") or not tokens_per_s or not peak:
        return None
    executed = sum(executed_flops_per_token(model, spec))
    return Calibration(
        gpu=gpu,
        strategy=spec.name,
        preset=result.recipe.get("preset", "?"),
        params=param_count(model),
        tokens_per_s=float(tokens_per_s),
        efficiency=executed * tokens_per_s / (peak * 1e12),
        run=str(path.parent),
    )


def _nearest(runs: list[Calibration], params: int) -> Calibration | None:
    return min(runs, key=lambda c: abs(math.log(c.params / params)), default=None)


def choose_calibration(
    spec: strategies.StrategySpec, params: int, gpu: str, calibrations: list[Calibration]
) -> tuple[Calibration | None, bool]:
    """(the run whose efficiency to take, whether its host work is inside it): the same strategy's nearest
    run on this GPU model, else the nearest run of a strategy without host work, else none."""
    here = [c for c in calibrations if c.gpu == gpu]
    same = _nearest([c for c in here if c.strategy == spec.name], params)
    if same is not None:
        return same, True
    no_host = [c for c in here if strategies.resolve(c.strategy).executor.host_step is None]
    return _nearest(no_host, params), False


def predict_speed(
    model: ModelConfig,
    spec: strategies.StrategySpec,
    device: Device,
    calibrations: list[Calibration],
    host: dict[str, dict],
    global_batch_tokens: int,
) -> dict:
    """The predicted tokens/s of `spec` training `model` on `device`, as a figure that names every input
    (`host`: the host-step timings of this machine by executor name, `HostTiming.to_dict()`)."""
    model_flops, recompute = executed_flops_per_token(model, spec)
    params = param_count(model)
    inputs: dict = {
        "model_flops_per_token": model_flops,
        "recomputed_flops_per_token": recompute,
        "peak_tflops": device.peak_tflops,
        "peak_source": device.peak_source,
    }
    if device.peak_tflops is None:
        return {
            "value": None,
            "source": "predicted",
            "from": inputs,
            "why_missing": f"no peak for {device.name}",
        }
    calibration, host_inside = choose_calibration(spec, params, device.name, calibrations)
    efficiency, said = DEFAULT_EFFICIENCY, f"a stated default (no measured run on {device.name})"
    if calibration is not None:
        c = calibration
        efficiency = c.efficiency
        said = f"run {c.run}: {c.strategy} at {c.preset} on {c.gpu}, {c.tokens_per_s:,.0f} tokens/s"
    compute_s = global_batch_tokens * (model_flops + recompute) / (device.peak_tflops * 1e12 * efficiency)
    inputs.update(efficiency=efficiency, efficiency_source=said, compute_s_per_step=compute_s)
    host_s, host_inputs = _host_seconds(spec, params, device, host, host_inside)
    inputs["host"] = host_inputs
    if host_s is None:
        return {"value": None, "source": "predicted", "from": inputs, "why_missing": host_inputs["why"]}
    inputs["step_s"] = compute_s + host_s
    return {"value": global_batch_tokens / (compute_s + host_s), "source": "predicted", "from": inputs}


def _host_seconds(
    spec: strategies.StrategySpec, params: int, device: Device, host: dict[str, dict], inside: bool
) -> tuple[float | None, dict | None]:
    """The host work a step exposes (seconds, and what it was computed from); (0, None) without any."""
    step = spec.executor.host_step
    if step is None:
        return 0.0, None
    said = {"optimizer": step.optimizer, "exposed_bytes_per_param": step.exposed_bytes_per_param,
            "overlapped_bytes_per_param_per_micro_batch": step.overlapped_bytes_per_param}  # fmt: skip
    if inside:
        return 0.0, {**said, "included": "in the calibrating run's efficiency"}
    timing = host.get(spec.executor.name) or {}
    if timing.get("seconds_per_param") is None:
        return None, {**said, "why": f"no host-step timing here: {timing.get('error', 'not benchmarked')}"}
    link_s = step.exposed_bytes_per_param * params / (device.link_gb_s * 1e9 * LINK_EFFICIENCY)
    optimizer_s = timing["seconds_per_param"] * params
    return optimizer_s + link_s, {
        **said,
        "seconds_per_param": timing["seconds_per_param"],
        "seconds_per_param_source": timing["source"],
        "link": device.link,
        "link_gb_s": device.link_gb_s,
        "link_source": device.link_source,
        "link_efficiency": LINK_EFFICIENCY,
        "optimizer_s_per_step": optimizer_s,
        "link_s_per_step": link_s,
    }
