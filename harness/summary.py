"""From a run's state to the summary figures of its result, as the design defines them."""

from __future__ import annotations

from harness import metrics
from harness.checkpoint import TrainState
from harness.clock import TrainingClock
from harness.config import Recipe
from harness.data.prefetch import Prefetcher
from harness.results import RunResult


def training_figures(
    result: RunResult,
    state: TrainState,
    recipe: Recipe,
    step_times: list[float],
    clock: TrainingClock,
    prefetch: Prefetcher,
) -> None:
    """Throughput, MFU, time outside the budget, data, energy and loss figures."""
    s = result.summary
    s.steps, s.tokens, s.train_s = state.step, state.tokens, state.train_s
    s.tokens_per_s = state.tokens / state.train_s if state.train_s > 0 else None
    per_step = [recipe.global_batch_tokens / t for t in step_times if t > 0]
    s.steady_tokens_per_s = metrics.steady_median(per_step)
    s.mfu = metrics.mfu(s.flops_per_token, s.steady_tokens_per_s, s.peak_tflops)
    excluded = clock.excluded_s
    s.setup_s, s.fit_s, s.warmup_s = excluded.get("setup"), excluded.get("fit"), excluded.get("warmup")
    s.eval_s, s.checkpoint_s = excluded.get("eval", 0.0), excluded.get("checkpoint", 0.0)
    s.data_wait_s = prefetch.wait_s
    s.data_tokens_per_s = prefetch.tokens_per_s
    s.energy_j = clock.energy_j
    s.joules_per_token = s.energy_j / state.tokens if s.energy_j is not None and state.tokens else None
    s.final_train_loss = state.last_loss
    if state.evals:
        s.final_val_loss = state.evals[-1]["val_loss"]
        s.gap_to_floor = state.evals[-1]["gap_to_floor"]
    s.time_to_target_s = {
        f"{target:g}": next((e["train_s"] for e in state.evals if e["val_loss"] <= target), None)
        for target in recipe.targets
    }
    available = result.data.get("train_tokens")
    s.epochs = state.tokens / available if available else None


def memory_figures(result: RunResult, device, sampler: metrics.ResourceSampler | None, strategy) -> None:
    """Peaks since warm-up (torch, NVML), the process's peak RSS, and the strategy's own memory facts.
    Also called after an out-of-memory, so the result shows the figures at failure."""
    s = result.summary
    if device is not None:
        for key, value in metrics.torch_memory_gib(device).items():
            setattr(s, key, value)
    if sampler is not None:
        sampler.stop()
        if sampler.peak_nvml_used is not None:
            s.peak_nvml_used_gib = sampler.peak_nvml_used / metrics.GIB
    s.peak_host_rss_gib = metrics.peak_rss_gib()
    if strategy is not None:
        try:
            facts = strategy.memory_facts()
        except Exception as exc:  # best effort: a failed step may have left no optimizer behind
            facts = {"error": str(exc)}
        result.memory_facts = facts
        s.pinned_host_gib = facts.get("pinned_host_gib")
        s.optimizer_state_gib = facts.get("optimizer_state_gib")
