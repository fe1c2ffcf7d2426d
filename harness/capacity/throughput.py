"""The throughput model: the tokens/s a strategy trains a model at on a device, predicted where it was not
measured, with every input named in the figure it returns.

    step time = max(global batch x executed FLOPs per token / FLOP rate, link traffic during compute)
                + exposed host work

- executed FLOPs per token: the model's (6N + attention, `harness.model.flops_per_token`) plus the forward a
  checkpointing transform recomputes in backward, as each transform declares (`recompute_forward`);
- FLOP rate: what a measured run on that device sustained (`harness.capacity.calibration`: the same
  strategy, else its executor, else the baseline, nearest size first; at a fixed global batch a step's
  host work and its compute both grow with the model, so a run of the same executor carries its host work
  along); else `DEFAULT_EFFICIENCY` of the device's dense 16-bit peak (the peak table);
- exposed host work of offloading executors (`Executor.host_step`), unless a run of that executor carries
  it: the host optimizer's seconds per parameter benchmarked on this machine, plus the bytes the GPU waits
  for over the host link at `LINK_EFFICIENCY` of its theoretical rate;
- the bytes each micro-batch moves while the GPU computes bound the step from below when they take longer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import strategies
from harness.capacity.calibration import Calibration, choose_calibration, executed_flops_per_token, unmodelled
from harness.core.presets import ModelConfig
from harness.metrics.gpus import pcie_gb_s
from harness.model import param_count

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


def predict_speed(
    model: ModelConfig,
    spec: strategies.StrategySpec,
    device: Device,
    calibrations: list[Calibration],
    host: dict[str, dict],
    global_batch_tokens: int,
    micro_batch: int | None = None,
) -> dict:
    """The predicted tokens/s of `spec` training `model` on `device`, as a figure that names every input
    (`host`: the host-step timings of this machine by executor name, `HostTiming.to_dict()`; `micro_batch`:
    the one the memory model fits, for the link traffic each micro-batch must hide behind its compute)."""
    model_flops, recompute = executed_flops_per_token(model, spec)
    params = param_count(model)
    inputs: dict = {
        "model_flops_per_token": model_flops,
        "recomputed_flops_per_token": recompute,
        "peak_tflops": device.peak_tflops,
        "peak_source": device.peak_source,
    }
    calibration, host_inside = choose_calibration(spec, model, device.name, global_batch_tokens, calibrations)
    if calibration is None or calibration.strategy != spec.name:
        inputs["not_modelled"] = unmodelled(spec.name)
    if calibration is not None:
        rate, said = calibration.flop_rate, calibration.says()
    elif device.peak_tflops is not None:
        rate = device.peak_tflops * 1e12 * DEFAULT_EFFICIENCY
        said = f"a stated default of {DEFAULT_EFFICIENCY} of the peak (no measured run on {device.name})"
    else:
        why = f"no peak for {device.name} and no measured run of it to learn its speed from"
        return {"value": None, "source": "predicted", "from": inputs, "why_missing": why}
    efficiency = None if device.peak_tflops is None else rate / (device.peak_tflops * 1e12)
    compute_s = global_batch_tokens * (model_flops + recompute) / rate
    inputs.update(flop_rate=rate, efficiency=efficiency, efficiency_source=said, compute_s_per_step=compute_s)
    host_s, host_inputs = _host_seconds(spec, params, device, host, host_inside)
    inputs["host"] = host_inputs
    if host_s is None:
        return {"value": None, "source": "predicted", "from": inputs, "why_missing": host_inputs["why"]}
    hidden_s = _link_during_compute(spec, params, device, global_batch_tokens, model.seq_len, micro_batch)
    if hidden_s > compute_s:  # the copies meant to hide behind compute take longer than it
        inputs.update(link_bound=True, link_during_compute_s_per_step=hidden_s)
    inputs["step_s"] = max(compute_s, hidden_s) + host_s
    return {"value": global_batch_tokens / inputs["step_s"], "source": "predicted", "from": inputs}


def _link_during_compute(
    spec, params: int, device: Device, batch: int, seq_len: int, micro: int | None
) -> float:
    """Seconds a step's overlapped copies take on the link (each micro-batch's, as the executor declares)."""
    step = spec.executor.host_step
    if step is None or micro is None or not device.link_gb_s:
        return 0.0
    micro_batches = max(1, batch // (micro * seq_len))
    return (
        micro_batches * step.overlapped_bytes_per_param * params / (device.link_gb_s * 1e9 * LINK_EFFICIENCY)
    )


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
        return 0.0, {
            **said,
            "included": "in the calibrating run's speed (the same executor, on that machine)",
        }
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
