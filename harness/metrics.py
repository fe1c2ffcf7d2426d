"""Metric definitions: MFU against a table of known peaks, resource peaks sampled in the background."""

from __future__ import annotations

import resource
import statistics
import sys
import threading

import psutil
import torch

from harness import nvml

GIB = 2**30

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, matched in order by substring of
# torch's device name. More specific names come first ("H100 PCIe" before "H100").
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("GB200", 2500.0),
    ("B200", 2250.0),
    ("B100", 1750.0),
    ("GH200", 989.5),
    ("H200", 989.5),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.5),
    ("H800", 989.5),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.05),
    ("L40", 181.05),
    ("L4", 121.0),
    ("RTX 6000 Ada", 364.2),
    ("A6000", 154.8),
    ("RTX 4090", 165.2),
    ("RTX 3090", 71.0),
    ("V100", 125.0),  # fp16: V100 has no bf16
    ("T4", 65.0),  # fp16
)


def peak_tflops(device_name: str) -> tuple[float | None, str | None]:
    """(peak bf16 TFLOP/s, the table entry used) for a device name; (None, None) if unknown or a CPU."""
    for pattern, tflops in PEAK_BF16_TFLOPS:
        if pattern.lower() in device_name.lower():
            return tflops, pattern
    return None, None


def mfu(flops_per_token: float, tokens_per_s: float | None, peak: float | None) -> float | None:
    """Model FLOPs utilization: achieved model FLOP/s over the device's peak (both in FLOP/s)."""
    if not tokens_per_s or not peak:
        return None
    return flops_per_token * tokens_per_s / (peak * 1e12)


def steady_median(values: list[float], skip_frac: float = 0.1, min_skip: int = 1) -> float | None:
    """Median after dropping the first steps (warm caches, allocator growth); None with no steps left."""
    skip = max(min_skip, int(len(values) * skip_frac)) if len(values) > min_skip else 0
    steady = values[skip:]
    return statistics.median(steady) if steady else None


def peak_rss_gib() -> float:
    """Peak resident set size of this process over its lifetime."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (2**30 if sys.platform == "darwin" else 2**20)


class ResourceSampler:
    """Samples NVML device memory and process RSS on a background thread; keeps the peaks."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self._interval_s = interval_s
        self._handle = nvml.handle()
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_nvml_used: int | None = None
        self.peak_rss: int = 0

    def _sample(self) -> None:
        used = nvml.memory_used_bytes(self._handle)
        if used is not None:
            self.peak_nvml_used = max(self.peak_nvml_used or 0, used)
        self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def start(self) -> ResourceSampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._sample()

    def energy_mj(self) -> float | None:
        return nvml.energy_mj(self._handle)


def torch_memory_gib(device: torch.device) -> dict[str, float | None]:
    if device.type != "cuda":
        return {"peak_allocated_gib": None, "peak_reserved_gib": None}
    return {
        "peak_allocated_gib": torch.cuda.max_memory_allocated(device) / GIB,
        "peak_reserved_gib": torch.cuda.max_memory_reserved(device) / GIB,
    }
