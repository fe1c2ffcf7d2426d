"""Automatic micro-batch fitting: per strategy, the largest micro-batch that fits in GPU memory with
headroom; gradient accumulation then fills the fixed global batch.

Peak memory grows about linearly with the micro-batch (activations), so two small eager probes predict
the largest size that fits, and a walk from the prediction finds the size that fits while the next larger
one does not. When the timed run is compiled, the walk is repeated with compiled probes starting from the
eager answer (compiled code usually needs less memory), so the size chosen is the largest that fits for
the program that is timed. Each probe is a real step of the strategy (forward, backward over two
micro-batches, optimizer step) on a freshly built model.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from harness.core.recipe import divisors_at_most
from harness.engine.runtime import is_host_out_of_memory, is_out_of_memory

GIB = 2**30

Probe = Callable[[int], int | None]  # micro-batch -> peak bytes of one step, or None when out of memory


class DoesNotFit(Exception):
    """Even the smallest micro-batch runs out of memory: the model does not fit with this strategy."""

    def __init__(self, message: str, probes: list[dict]) -> None:
        super().__init__(message)
        self.probes = probes


@dataclass
class FitReport:
    micro_batch: int
    allowance_gib: float
    # {"micro_batch": m, "peak_reserved_gib": x | None (out of memory), "compiled": bool}
    probes: list[dict] = field(default_factory=list)


class _Prober:
    """Memoized probes of one program (eager or compiled), recorded in the order they ran."""

    def __init__(self, probe: Probe, allowance_bytes: int, compiled: bool, log: list[dict]) -> None:
        self._probe, self._allowance, self._compiled, self._log = probe, allowance_bytes, compiled, log
        self.seen: dict[int, int | None] = {}

    def fits(self, m: int) -> bool:
        if m not in self.seen:
            self.seen[m] = self._probe(m)
            peak = self.seen[m]
            gib = None if peak is None else peak / GIB
            self._log.append({"micro_batch": m, "peak_reserved_gib": gib, "compiled": self._compiled})
        return self.seen[m] is not None and self.seen[m] <= self._allowance


def _walk(prober: _Prober, sizes: list[int], start: int) -> int | None:
    """From `start`, the largest size that fits while the next larger one does not (None: none fits)."""
    i = sizes.index(start)
    if prober.fits(sizes[i]):
        while i + 1 < len(sizes) and prober.fits(sizes[i + 1]):
            i += 1
        return sizes[i]
    while i > 0:
        i -= 1
        if prober.fits(sizes[i]):
            return sizes[i]
    return None


def _predicted_start(prober: _Prober, sizes: list[int], allowance_bytes: int) -> int:
    """The largest size a line through two small probes says fits (the smallest size is known to fit)."""
    small = sizes[0]
    second = next((s for s in sizes if s >= 4 * small), sizes[-1])
    if second == small:
        return small
    if not prober.fits(second):
        return max(small, max(s for s in sizes if s < second))
    slope = (prober.seen[second] - prober.seen[small]) / (second - small)
    if slope <= 0:
        return sizes[-1]
    predicted = small + (allowance_bytes - prober.seen[small]) / slope
    return max([s for s in sizes if s <= predicted] or [small])


def choose_micro_batch(
    probe: Probe,
    candidates: Sequence[int],
    allowance_bytes: int,
    compiled_probe: Probe | None = None,
    *,
    probe_compiled: bool = False,
) -> FitReport:
    """The largest candidate whose probe fits the allowance, the next larger one not fitting (or absent).
    With `compiled_probe`, the answer is confirmed, and moved up or down, with the compiled program.
    `probe_compiled` says that `probe` itself runs the compiled program (a strategy that needs compile)."""
    sizes = sorted(set(candidates))
    log: list[dict] = []
    eager = _Prober(probe, allowance_bytes, probe_compiled, log)

    def does_not_fit(m: int) -> DoesNotFit:
        available = f"{allowance_bytes / GIB:.1f} GiB available"
        return DoesNotFit(f"does not fit: micro-batch {m} needs more than the {available}", log)

    if not eager.fits(sizes[0]):
        raise does_not_fit(sizes[0])
    best = _walk(eager, sizes, _predicted_start(eager, sizes, allowance_bytes))
    if compiled_probe is not None:
        best = _walk(_Prober(compiled_probe, allowance_bytes, True, log), sizes, best)
        if best is None:
            raise does_not_fit(sizes[0])
    return FitReport(best, allowance_bytes / GIB, log)


@dataclass
class CudaMemory:
    """The device allocator as the fit sees it; tests substitute a fake with the same methods."""

    device: torch.device

    def release(self) -> None:
        gc.collect()
        torch.cuda.empty_cache()

    def reset_peak(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)

    def peak_reserved(self) -> int:
        return torch.cuda.max_memory_reserved(self.device)


def device_probe(run_step: Callable[[int], None], memory: CudaMemory) -> Probe:
    """Wrap `run_step(m)` (build, one step, teardown) into a probe that reports peak reserved bytes.
    Every kind of GPU out-of-memory (torch's allocator, cuBLAS, NCCL, a library's own) means "does not
    fit"; the host running out (a pinned allocation) is not the GPU's answer and propagates, as does any
    other failure."""

    def probe(micro_batch: int) -> int | None:
        memory.release()
        memory.reset_peak()
        try:
            run_step(micro_batch)
            return memory.peak_reserved()
        except Exception as exc:
            if is_out_of_memory(exc) and not is_host_out_of_memory(exc):
                return None
            raise
        finally:
            memory.release()

    return probe


def memory_allowance_bytes(device: torch.device, cap_bytes: int | None = None, headroom: float = 0.08) -> int:
    """What this process may use: free device memory now (or the cap, if lower), less a headroom for
    fragmentation and spikes."""
    free, _total = torch.cuda.mem_get_info(device)
    available = free + torch.cuda.memory_reserved(device)
    if cap_bytes is not None:
        available = min(available, cap_bytes)
    return int(available * (1 - headroom))


def micro_batch_for_run(
    requested: int | None,
    device: torch.device,
    global_seqs: int,
    default: int,
    run_step: Callable[[int, bool], None],
    *,
    compiled: bool,
    compiled_only: bool = False,
    cap_bytes: int | None = None,
) -> tuple[int, FitReport | None]:
    """The run's micro-batch: as requested; else fitted on CUDA; else the largest divisor of the global
    batch not above the preset's default (CPU runs need no fitting). `run_step(m, compiled)` runs one
    probe step of the strategy. `compiled_only`: the strategy cannot run eagerly (fp8), so every probe is
    compiled."""
    if requested is not None:  # RunConfig checked that it divides the global batch
        return requested, None
    if device.type != "cuda":
        return divisors_at_most(global_seqs, default)[0], None
    memory = CudaMemory(device)
    sizes, allowance = divisors_at_most(global_seqs, global_seqs), memory_allowance_bytes(device, cap_bytes)
    if compiled_only:
        report = choose_micro_batch(
            device_probe(lambda m: run_step(m, True), memory), sizes, allowance, probe_compiled=True
        )
        return report.micro_batch, report
    report = choose_micro_batch(
        device_probe(lambda m: run_step(m, False), memory),
        sizes,
        allowance,
        device_probe(lambda m: run_step(m, True), memory) if compiled else None,
    )
    return report.micro_batch, report
