"""Whether a run's first optimizer step is feasible on the CPU at hand, estimated before anything starts.

`make bench` with its defaults on a laptop (gpt2-124m, a 524,288-token batch) asks the CPU for about
4.5e14 FLOPs per optimizer step: hours per step, and the untimed warm-up would run for hours without a
line. One step's model FLOPs (6N plus attention per token, times the global batch) over this CPU's
measured matrix-multiply rate (a lower bound on the step's time: training reaches a fraction of it) says
so in a fraction of a second. A GPU's step is seconds at most for every preset, so only CPU runs are
checked."""

from __future__ import annotations

import functools
import time

from harness.core.errors import UserError
from harness.core.recipe import RunConfig
from harness.core.units import format_duration
from harness.model import flops_per_token

WARMUP_LIMIT_S = 300.0  # warm-up is untimed: longer than this is refused
# The least share of its measured matrix-multiply rate a CPU training step reaches: the tiny preset reaches
# 0.14 on the 2-core development machine (its small matrices make it the worst case); a busy machine less.
CPU_STEP_EFFICIENCY_FLOOR = 0.05
# A checkpoint's write, at a modest disk's sustained rate (a stated default, not measured here).
DISK_WRITE_BYTES_PER_S = 200e6


@functools.cache
def matmul_flops_per_s(size: int = 512, seconds: float = 0.15) -> float:
    """This CPU's fp32 matrix-multiply rate with torch's threads as they are now (repeated for `seconds`)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # the first call pays for thread start-up
    calls, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds or calls < 3:
        torch.mm(a, b)
        calls += 1
    return 2 * size**3 * calls / elapsed


def step_seconds_at_least(cfg: RunConfig, flops_per_s: float) -> float:
    return flops_per_token(cfg.recipe.model) * cfg.recipe.global_batch_tokens / flops_per_s


def check_first_step(cfg: RunConfig, *, allow_slow: bool, flops_per_s: float | None = None) -> None:
    """Refuse, in one line, a CPU run whose warm-up would outlast WARMUP_LIMIT_S or whose one step would
    outlast its whole budget; `allow_slow` (--allow-slow) starts it anyway."""
    if allow_slow:
        return
    rate = matmul_flops_per_s() if flops_per_s is None else flops_per_s
    step_s = step_seconds_at_least(cfg, rate)
    warmup_s = step_s * cfg.warmup_steps
    if warmup_s <= WARMUP_LIMIT_S and step_s <= cfg.recipe.budget_s:
        return
    raise UserError(
        f"{cfg.recipe.preset} on this CPU: one optimizer step is "
        f"{flops_per_token(cfg.recipe.model) * cfg.recipe.global_batch_tokens:.2g} FLOPs, at least "
        f"{format_duration(step_s)} at its measured {rate / 1e9:.0f} GFLOP/s, so warm-up alone "
        f"({cfg.warmup_steps} steps) would take {format_duration(warmup_s)}: use --preset tiny "
        "(PRESET=tiny), a GPU, or --allow-slow to start it anyway"
    )


def stop_grace_s(configs: list[RunConfig], on_cpu: bool, flops_per_s: float | None = None) -> float:
    """How long a stopped run may take to end before its launcher kills it: the step it is in (on a CPU,
    at most its lower bound over CPU_STEP_EFFICIENCY_FLOOR; on a GPU, seconds) twice over, plus writing
    its checkpoint; never less than the launcher's STOP_GRACE_S."""
    from harness.orchestrate.launchers.run_control import STOP_GRACE_S
    from harness.orchestrate.preflight import checkpoint_bytes

    longest = 0.0
    for cfg in configs:
        step_s = 0.0
        if on_cpu:
            rate = matmul_flops_per_s() if flops_per_s is None else flops_per_s
            step_s = step_seconds_at_least(cfg, rate) / CPU_STEP_EFFICIENCY_FLOOR
        longest = max(longest, 2 * step_s + checkpoint_bytes(cfg) / DISK_WRITE_BYTES_PER_S)
    return max(STOP_GRACE_S, longest)
