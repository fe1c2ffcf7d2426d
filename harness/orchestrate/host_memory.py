"""Host memory for admission: what a run is predicted to need, and what the node has for the runs of a
sweep. The placement planner starts a run only when its need fits beside the needs of the runs already
running.

`host_need_bytes` is the one place a need comes from: what an earlier run of the same configuration
measured on this machine when there is one (it includes what no model knows: allocator slack, the data
process), else the capacity memory model's prediction from the strategy's declared footprint."""

from __future__ import annotations

from pathlib import Path

from harness.core.recipe import RunConfig
from harness.core.results import RESULT_FILE, CorruptResult, RunResult
from harness.core.serialize import to_dict
from harness.core.units import GIB
from harness.metrics.readback import read_result
from harness.orchestrate.plan import runs_on_cuda

# Measured figures, best first: the whole process's life (setup and fitting included), then training only.
MEASURED_KEYS = ("lifetime_host_rss_gib", "peak_host_rss_gib")


def host_need_bytes(cfg: RunConfig, earlier: list[RunResult]) -> int:
    """The host memory `cfg` is expected to need, in bytes: measured before, else predicted."""
    measured = measured_need_bytes(cfg, earlier)
    return measured if measured is not None else predicted_need_bytes(cfg)


def predicted_need_bytes(cfg: RunConfig) -> int:
    """The memory model's host figure; on the CPU the "GPU" part (weights, activations) is host memory too.
    Host needs hardly depend on the micro-batch, so a fitted one (unknown yet) is taken as 1."""
    from harness.capacity.memory_model import predict

    on_gpu = runs_on_cuda(cfg.device)
    precision = cfg.recipe.precision if cfg.recipe.precision != "auto" else ("bf16" if on_gpu else "fp32")
    prediction = predict(cfg.recipe.model, cfg.strategy, cfg.micro_batch or 1, precision)
    return int(prediction.host_bytes + (0 if on_gpu else prediction.gpu_bytes))


def measured_need_bytes(cfg: RunConfig, earlier: list[RunResult]) -> int | None:
    """The largest host RSS an earlier run of the same strategy, model, batch and device kind measured."""
    figures = [
        value
        for result in earlier
        if _same_configuration(cfg, result)
        for value in [next((result.summary.get(k) for k in MEASURED_KEYS if result.summary.get(k)), None)]
        if value is not None
    ]
    return int(max(figures) * GIB) if figures else None


def _same_configuration(cfg: RunConfig, result: RunResult) -> bool:
    recipe = to_dict(cfg.recipe)
    device = str(result.settings.get("device", ""))
    return (
        result.strategy.get("name") == cfg.strategy
        and result.recipe.get("model") == recipe["model"]
        and result.recipe.get("global_batch_tokens") == recipe["global_batch_tokens"]
        and (cfg.device == "auto" or device.startswith(cfg.device))
        and (cfg.micro_batch is None or result.settings.get("micro_batch") == cfg.micro_batch)
    )


def earlier_results(runs_dir: Path) -> list[RunResult]:
    """Every readable result under `runs_dir`, checked (a figure set aside is None; unreadable results and
    such figures simply predict nothing)."""
    found = []
    for path in sorted(Path(runs_dir).glob(f"*/{RESULT_FILE}")):
        try:
            found.append(read_result(path)[0])
        except CorruptResult:
            continue
    return found


def host_allowance_bytes() -> int:
    """What the runs of a sweep may share: the memory the OS calls available before the first one starts
    (other processes' use is already taken out)."""
    import psutil

    return int(psutil.virtual_memory().available)
