"""What the placement planner needs to know about the node, behind a small interface: the GPUs (in the
launching process's numbering), the CPUs the driver names as close to each GPU (NVML's CPU affinity), the
cores this process may use, and which cores are hyperthread siblings. Tests hand the planner a fake."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str | None = None  # None: the child is given the index (a fake node, or no UUID from torch)
    name: str = ""


class NodeTopology(Protocol):
    def gpus(self) -> list[Gpu]: ...

    def cpu_affinity(self, gpu: Gpu) -> frozenset[int] | None: ...

    def usable_cores(self) -> frozenset[int]: ...

    def sibling_key(self, core: int) -> int:
        """Cores with the same key share a physical core (hyperthreads): they go to the same run."""
        ...


class LiveTopology:
    """This machine, through torch (GPUs in CUDA's numbering, with their UUIDs) and NVML (affinity).
    Both load only when asked: the CPU-only launch of a sweep never imports them for this."""

    def gpus(self) -> list[Gpu]:
        import torch

        if not torch.cuda.is_available():
            return []
        found = []
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            uuid = str(getattr(props, "uuid", "") or "") or None
            if uuid is not None and not uuid.startswith(("GPU-", "MIG-")):
                uuid = f"GPU-{uuid}"
            found.append(Gpu(index, uuid, props.name))
        return found

    def cpu_affinity(self, gpu: Gpu) -> frozenset[int] | None:
        from harness.metrics import nvml

        return nvml.cpu_affinity(nvml.handle(gpu.index), os.cpu_count() or 1)

    def usable_cores(self) -> frozenset[int]:
        if hasattr(os, "sched_getaffinity"):
            return frozenset(os.sched_getaffinity(0))
        return frozenset(range(os.cpu_count() or 1))

    def sibling_key(self, core: int) -> int:
        path = Path(f"/sys/devices/system/cpu/cpu{core}/topology/thread_siblings_list")
        try:
            first = path.read_text().strip().replace("-", ",").split(",")[0]
            return int(first)
        except (OSError, ValueError):
            return core
