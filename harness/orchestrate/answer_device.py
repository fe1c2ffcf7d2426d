"""Which device an answer is for, and what the throughput model knows of it: the GPU at hand (its name and
memory from torch, its host link from the GPU table, else NVML, else a stated default), a GPU of the table
named with `--gpu` (predicted, not present), or this machine's CPU (measured only: it has no peak)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.capacity.memory_model import GIB
from harness.capacity.throughput import ASSUMED_LINK, Device
from harness.core.errors import UserError
from harness.metrics.gpus import GPUS, gpu_model, pcie_gb_s
from harness.metrics.peaks import peak_tflops


@dataclass(frozen=True)
class Target:
    """The device an answer is for."""

    device: Device
    memory_gib: float  # all of it (a --gpu-memory-gib size caps it)
    present: bool  # this machine has it: candidates can be measured on it
    kind: str  # "cuda" or "cpu"

    def cap(self, size_gib: float) -> float | None:
        """The GPU cap a memory size stands for: None when it is all of the card (or a CPU)."""
        return size_gib if self.kind == "cuda" and size_gib < self.memory_gib - 1e-9 else None

    def where(self, size_gib: float, measured: bool) -> str:
        """How the verdict names it at one memory size: 'an NVIDIA H100 80GB HBM3 capped at 24 GiB', with
        '(predicted)' when nothing is measured on it."""
        if self.kind == "cpu":
            return f"this CPU ({size_gib:.3g} GiB)"
        name = self.device.name
        article = "an" if name[:1].upper() in "AEFHILMNORSX" else "a"
        capped = "" if self.cap(size_gib) is None else f" capped at {size_gib:g} GiB"
        return f"{article} {name}{capped}" + ("" if measured else " (predicted)")

    def to_dict(self) -> dict:
        where = {"memory_gib": self.memory_gib, "present": self.present, "kind": self.kind}
        return {**self.device.to_dict(), **where}


def target_for(gpu: str | None, predict_only: bool) -> Target:
    """The GPU named with --gpu (measured only if it is the one here), else the GPU here, else this CPU
    (measured; a prediction for a CPU needs a GPU named)."""
    import torch

    here = torch.cuda.get_device_properties(0) if torch.cuda.is_available() else None
    if gpu is not None:
        model = gpu_model(gpu)
        present = here is not None and here.name == model.name
        tflops, entry = model.peak
        device = Device(model.name, tflops, entry, model.link, model.link_gb_s, "the GPU table")
        return Target(device, model.memory_gib, present, "cuda")
    if here is not None:
        link, gb_s, source = host_link(here.name)
        tflops, entry = peak_tflops(here.name)
        device = Device(here.name, tflops, entry, link, gb_s, source)
        return Target(device, here.total_memory / GIB, True, "cuda")
    if predict_only:
        raise UserError(
            "--predict-only on a machine without a GPU needs one named: add --gpu NAME, e.g. "
            f"--gpu {next(iter(GPUS))!r} (`--gpu list` names them all)"
        )
    import psutil

    cpu = Device("cpu", None, None, "none", 0.0, "the CPU trains in host memory")
    return Target(cpu, psutil.virtual_memory().available / GIB, True, "cpu")


def host_link(name: str) -> tuple[str, float, str]:
    """(the link, its one-way GB/s, where that came from) for the GPU here: NVML's maximum for this device
    in this slot, else the GPU table's, else a stated default."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        generation = pynvml.nvmlDeviceGetMaxPcieLinkGeneration(handle)
        width = pynvml.nvmlDeviceGetMaxPcieLinkWidth(handle)
        return f"PCIe {generation}.0 x{width}", pcie_gb_s(generation, width), "NVML (this slot's maximum)"
    except Exception:  # no NVML, or a link it does not report (NVLink-C2C): the table, else the default
        if name in GPUS:
            return GPUS[name].link, GPUS[name].link_gb_s, "the GPU table"
        return ASSUMED_LINK[0], ASSUMED_LINK[1], "a stated default (neither NVML nor the GPU table knew it)"
