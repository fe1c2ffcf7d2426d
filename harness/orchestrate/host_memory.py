"""Host memory for admission: what a run is predicted to need, and what the node has for the runs of a
sweep. The placement planner starts a run only when its need fits beside the needs of the runs already
running.

`host_need_bytes` is the one place a prediction comes from. The capacity work's memory model (per-strategy
host bytes per parameter, pinned buffers, the data process) belongs here, ahead of the measured fallback;
until it exists, the only figure is what an earlier run of the same configuration measured."""

from __future__ import annotations

from pathlib import Path

from harness.core.recipe import RunConfig
from harness.core.results import RESULT_FILE, CorruptResult, RunResult, load_result
from harness.core.serialize import to_dict
from harness.core.units import GIB

# Measured figures, best first: the whole process's life (setup and fitting included), then training only.
MEASURED_KEYS = ("lifetime_host_rss_gib", "peak_host_rss_gib")


def host_need_bytes(cfg: RunConfig, earlier: list[RunResult]) -> int | None:
    """The host memory `cfg` is predicted to need, in bytes; None when nothing predicts it (the run is
    then admitted without a reservation). The memory model, once there, is asked first, here."""
    return measured_need_bytes(cfg, earlier)


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
    """Every readable result under `runs_dir` (unreadable ones simply predict nothing)."""
    found = []
    for path in sorted(Path(runs_dir).glob(f"*/{RESULT_FILE}")):
        try:
            found.append(load_result(path))
        except CorruptResult:
            continue
    return found


def host_budget_bytes() -> int:
    """What the runs of a sweep may share: the memory the OS calls available before the first one starts
    (other processes' use is already taken out)."""
    import psutil

    return int(psutil.virtual_memory().available)
