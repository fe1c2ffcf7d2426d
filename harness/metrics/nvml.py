"""A thin, failure-tolerant view of NVML (nvidia-ml-py): absent NVML simply means no figure."""

from __future__ import annotations

import contextlib
from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def _nvml():
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # no driver, no library, no GPU: NVML figures are then simply absent
        return None


def handle(device_index: int | None = None):
    """The NVML handle of the CUDA device torch uses (matched by UUID), or None."""
    nvml = _nvml()
    if nvml is None or not torch.cuda.is_available():
        return None
    index = torch.cuda.current_device() if device_index is None else device_index
    with contextlib.suppress(Exception):
        uuid = str(torch.cuda.get_device_properties(index).uuid)
        return nvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    with contextlib.suppress(Exception):
        return nvml.nvmlDeviceGetHandleByIndex(index)
    return None


def _call(name: str, *args):
    nvml = _nvml()
    if nvml is None:
        return None
    try:
        return getattr(nvml, name)(*args)
    except Exception:
        return None


def memory_used_bytes(h) -> int | None:
    info = _call("nvmlDeviceGetMemoryInfo", h) if h is not None else None
    return None if info is None else int(info.used)


def energy_mj(h) -> float | None:
    """Total energy since the driver loaded, in millijoules (Volta and newer)."""
    value = _call("nvmlDeviceGetTotalEnergyConsumption", h) if h is not None else None
    return None if value is None else float(value)


def driver_version() -> str | None:
    value = _call("nvmlSystemGetDriverVersion")
    return value.decode() if isinstance(value, bytes) else value


def other_processes(h, own_pid: int) -> list[dict]:
    """Processes other than ours holding memory on the GPU: they distort memory and speed figures."""
    procs = _call("nvmlDeviceGetComputeRunningProcesses", h) if h is not None else None
    return [
        {"pid": p.pid, "used_gib": (p.usedGpuMemory or 0) / 2**30} for p in (procs or []) if p.pid != own_pid
    ]


def cpu_affinity(h, n_cpus: int) -> frozenset[int] | None:
    """The CPUs the driver names as close to this GPU (its NUMA node), or None where NVML does not say.
    NVML answers in 64-bit words of a bitmask, lowest CPU first."""
    words = _call("nvmlDeviceGetCpuAffinity", h, max(1, -(-n_cpus // 64))) if h is not None else None
    if not words:
        return None
    cores = {64 * i + bit for i, word in enumerate(words) for bit in range(64) if int(word) >> bit & 1}
    return frozenset(cores) or None
