"""Automatic micro-batch fitting: per strategy, the largest micro-batch that fits in GPU memory with
headroom; gradient accumulation then fills the fixed global batch.

Peak memory grows about linearly with the micro-batch (activations), so two small probes predict the
largest size that fits, and one or two more confirm it. Each probe is a real step of the strategy
(forward, backward over two micro-batches, optimizer step) on a freshly built model.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from harness.runtime import check_micro_batch, divisors_at_most

GIB = 2**30


class DoesNotFit(Exception):
    """Even the smallest micro-batch runs out of memory: the model does not fit with this strategy."""

    def __init__(self, message: str, probes: list[dict]) -> None:
        super().__init__(message)
        self.probes = probes


@dataclass
class FitReport:
    micro_batch: int
    budget_gib: float
    probes: list[dict] = field(default_factory=list)  # {"micro_batch": m, "peak_reserved_gib": x | None}


def choose_micro_batch(
    probe: Callable[[int], int | None], candidates: Sequence[int], budget_bytes: int
) -> FitReport:
    """probe(m) -> peak bytes of one step at micro-batch m, or None when it ran out of memory."""
    sizes = sorted(set(candidates))
    seen: dict[int, int | None] = {}

    def fits(m: int) -> bool:
        if m not in seen:
            seen[m] = probe(m)
        return seen[m] is not None and seen[m] <= budget_bytes

    def report(m: int) -> FitReport:
        probes = [
            {"micro_batch": k, "peak_reserved_gib": None if v is None else v / GIB} for k, v in seen.items()
        ]
        return FitReport(m, budget_bytes / GIB, probes)

    small = sizes[0]
    if not fits(small):
        raise DoesNotFit(
            f"does not fit: micro-batch {small} needs more than the {budget_bytes / GIB:.1f} GiB available",
            report(small).probes,
        )
    best = small
    second = next((s for s in sizes if s >= 4 * small), sizes[-1])
    predicted = sizes[-1]
    if second != small:
        if fits(second):
            best = second
            slope = (seen[second] - seen[small]) / (second - small)
            if slope > 0:
                predicted = int(small + (budget_bytes - seen[small]) / slope)
        else:
            predicted = second - 1
    for m in reversed(sizes):
        if m <= best:
            break
        if m <= predicted and fits(m):
            best = m
            break
    return report(best)


def cuda_probe(run_step: Callable[[int], None], device: torch.device) -> Callable[[int], int | None]:
    """Wrap `run_step(m)` (build, one step, teardown) into a probe that reports peak reserved bytes."""

    def probe(micro_batch: int) -> int | None:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        try:
            run_step(micro_batch)
            return torch.cuda.max_memory_reserved(device)
        except torch.OutOfMemoryError:
            return None
        finally:
            gc.collect()
            torch.cuda.empty_cache()

    return probe


def memory_budget_bytes(device: torch.device, headroom: float = 0.08) -> int:
    """What this process may use: free device memory now, less a headroom for fragmentation and spikes."""
    free, _total = torch.cuda.mem_get_info(device)
    return int((free + torch.cuda.memory_reserved(device)) * (1 - headroom))


def micro_batch_for_run(
    requested: int | None,
    device: torch.device,
    global_seqs: int,
    default: int,
    run_step: Callable[[int], None],
) -> tuple[int, FitReport | None]:
    """The run's micro-batch: as requested; else fitted on CUDA; else the largest divisor of the global
    batch not above the preset's default (CPU runs need no fitting)."""
    if requested is not None:
        check_micro_batch(requested, global_seqs)
        return requested, None
    if device.type != "cuda":
        return divisors_at_most(global_seqs, default)[0], None
    candidates = divisors_at_most(global_seqs, global_seqs)
    report = choose_micro_batch(cuda_probe(run_step, device), candidates, memory_budget_bytes(device))
    return report.micro_batch, report
