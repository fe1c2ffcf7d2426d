"""What ran, where: captured with every result so that it describes itself."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import psutil
import torch

from harness.core import placement
from harness.metrics import nvml
from harness.metrics.rapl import RaplMeter

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = (
    "torch",
    "deepspeed",
    "bitsandbytes",
    "datasets",
    "tokenizers",
    "nvidia-ml-py",
    "numpy",
    "pandas",
)


def library_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def code_fingerprint() -> str:
    """A hash of the harness and strategy sources that ran: the exact code, even without git."""
    digest = hashlib.sha256()
    for package in ("harness", "strategies"):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def describe_gpu(device: torch.device | None = None) -> dict:
    if not torch.cuda.is_available() or (device is not None and device.type != "cuda"):
        return {"gpu_name": None, "gpu_memory_gib": None, "gpu_count": torch.cuda.device_count()}
    index = torch.cuda.current_device() if device is None or device.index is None else device.index
    props = torch.cuda.get_device_properties(index)
    return {
        "gpu_name": props.name,
        "gpu_memory_gib": props.total_memory / 2**30,
        "gpu_count": torch.cuda.device_count(),
        "gpu_capability": f"{props.major}.{props.minor}",
        "driver": nvml.driver_version(),
        "cuda_runtime": torch.version.cuda,
        "bf16_supported": torch.cuda.is_bf16_supported(),
    }


def placement_record() -> dict:
    """Where this process ran on its node: the launcher's placement (GPU index, cores, slot) and the CPU
    affinity the process actually has. The launcher adds the runs that ran beside it when the run ends."""
    where = placement.from_env()
    record = {} if where is None else asdict(where)
    record["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hasattr(os, "sched_getaffinity"):
        record["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    return record


def capture(device: torch.device | None = None, *, seed: int | None = None, command: tuple = ()) -> dict:
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        **describe_gpu(device),
        "device": str(device) if device is not None else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": {name: library_version(name) for name in LIBRARIES},
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "host_ram_gib": psutil.virtual_memory().total / 2**30,
        "host_energy_domains": RaplMeter().domains,  # the RAPL counters read; none: energy is GPU only
        "git_commit": commit,
        "git_dirty": None if dirty is None else bool(dirty),
        "code_fingerprint": code_fingerprint(),
        "container_image": os.environ.get("HARNESS_IMAGE"),
        "seed": seed,
        "command": list(command) or sys.argv,
        "hostname": platform.node(),
        "placement": placement_record(),
    }
