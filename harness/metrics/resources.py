"""Resource peaks: GPU memory by torch's allocator and by NVML (sampled on a background thread), and the
resident memory of the run's process tree (the run and the processes it started, such as the data
producer); the energy counters of the GPU and the host."""

from __future__ import annotations

import resource
import sys
import threading

import psutil
import torch

from harness.core.units import GIB
from harness.metrics import nvml
from harness.metrics.rapl import RaplMeter


def peak_rss_gib() -> float:
    """Peak resident set size of this process over its lifetime."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (2**30 if sys.platform == "darwin" else 2**20)


def tree_rss_bytes(process: psutil.Process) -> int:
    """Resident bytes of `process` and every process under it (children that end meanwhile count 0)."""
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def reset_device_peaks(device: torch.device) -> None:
    """Start the training peaks clean: return the blocks warm-up cached to the driver first, so that
    neither torch's reserved peak nor NVML's used memory keeps what only warm-up needed."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


class ResourceSampler:
    """Samples NVML device memory and the process tree's RSS on a background thread; keeps the peaks."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self._interval_s = interval_s
        self._handle = nvml.handle()
        self._host_energy = RaplMeter()
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_nvml_used: int | None = None
        self.peak_rss: int = 0

    def _sample(self) -> None:
        used = nvml.memory_used_bytes(self._handle)
        if used is not None:
            self.peak_nvml_used = max(self.peak_nvml_used or 0, used)
        self.peak_rss = max(self.peak_rss, tree_rss_bytes(self._process))
        self._host_energy.poll()  # often enough that no counter wraps twice between two reads

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def start(self) -> ResourceSampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling, with one last sample; idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._sample()

    def gpu_energy_j(self) -> float | None:
        mj = nvml.energy_mj(self._handle)
        return None if mj is None else mj / 1000.0

    def energy_meters(self) -> dict:
        """The joule counters the training clock reads at its edges: the GPU's (NVML) and the host's
        (RAPL: CPU packages and DRAM); each None where the machine does not let it be read."""
        return {"gpu": self.gpu_energy_j, "host": self._host_energy.joules}


def torch_memory_gib(device: torch.device | None) -> dict[str, float | None]:
    if device is None or device.type != "cuda":
        return {"peak_allocated_gib": None, "peak_reserved_gib": None}
    return {
        "peak_allocated_gib": torch.cuda.max_memory_allocated(device) / GIB,
        "peak_reserved_gib": torch.cuda.max_memory_reserved(device) / GIB,
    }


def memory_peaks(
    device: torch.device | None, sampler: ResourceSampler | None, *, final: bool = True
) -> dict[str, float | None]:
    """This session's memory peaks since training began (torch's counters are reset after warm-up; the
    sampler starts with the training loop). Also called after an out-of-memory, for the figures at failure,
    and at each checkpoint (not final: the sampler goes on). Host RSS during training comes from the
    sampler; the process's lifetime peak (setup and fit included) is kept beside it."""
    peaks = torch_memory_gib(device)
    if sampler is not None and final:
        sampler.stop()
    nvml_used = None if sampler is None else sampler.peak_nvml_used
    peaks["peak_nvml_used_gib"] = None if nvml_used is None else nvml_used / GIB
    peaks["peak_host_rss_gib"] = sampler.peak_rss / GIB if sampler is not None else peak_rss_gib()
    peaks["lifetime_host_rss_gib"] = peak_rss_gib()
    return peaks


def strategy_memory(strategy) -> dict:
    """The strategy's own memory facts (optimizer state, masters, buffers, pinned bytes); best effort, since
    a failed step may have left no optimizer behind."""
    if strategy is None:
        return {}
    try:
        return strategy.memory_facts()
    except Exception as exc:
        return {"error": str(exc)}
