"""The GPUs an answer can be predicted for without one (`harness answer --gpu NAME`): each card's memory and
its link to the host, beside its dense 16-bit peak (the peak table, `harness.metrics.peaks`). No torch here.

Memory is the card's nominal size, taken as GiB (torch reports a little less: 79.2 GiB on an H100 80GB
HBM3), or what is left with ECC on where the card ships with it (L4, A10). A link's bandwidth is its
theoretical rate in one direction: PCIe moves 0.25, 0.5, 0.985, 1.969, 3.938 and 7.563 GB/s per lane in
generations 1 to 6 (after line coding); GH200's NVLink-C2C 450 GB/s."""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.errors import UserError
from harness.metrics.peaks import peak_tflops

PCIE_GB_S_PER_LANE = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


def pcie_gb_s(generation: int, width: int) -> float:
    """One direction's theoretical rate of a PCIe link of this generation and width."""
    return PCIE_GB_S_PER_LANE[generation] * width


@dataclass(frozen=True)
class GpuModel:
    name: str  # exactly as torch (and NVML) report it
    memory_gib: float  # nominal
    link: str  # the host link, as people name it
    link_gb_s: float  # one direction, theoretical

    @property
    def peak(self) -> tuple[float | None, str | None]:
        """(dense 16-bit TFLOP/s, the peak table's entry)."""
        return peak_tflops(self.name)

    def to_dict(self) -> dict:
        tflops, entry = self.peak
        return {
            "name": self.name,
            "memory_gib": self.memory_gib,
            "link": self.link,
            "link_gb_s": self.link_gb_s,
            "peak_tflops": tflops,
            "peak_source": entry,
        }


def _pcie(name: str, memory_gib: float, generation: int, width: int = 16) -> GpuModel:
    return GpuModel(name, memory_gib, f"PCIe {generation}.0 x{width}", pcie_gb_s(generation, width))


GPUS: dict[str, GpuModel] = {
    g.name: g
    for g in (
        _pcie("NVIDIA H100 80GB HBM3", 80, 5),
        _pcie("NVIDIA H100 PCIe", 80, 5),
        _pcie("NVIDIA H100 NVL", 94, 5),
        _pcie("NVIDIA H200", 141, 5),
        _pcie("NVIDIA H200 NVL", 141, 5),
        GpuModel("NVIDIA GH200 480GB", 96, "NVLink-C2C", 450.0),
        _pcie("NVIDIA H800", 80, 5),
        _pcie("NVIDIA B200", 180, 5),  # PCIe 6.0-capable; the hosts it ships in link at 5.0
        _pcie("NVIDIA A100-SXM4-80GB", 80, 4),
        _pcie("NVIDIA A100-SXM4-40GB", 40, 4),
        _pcie("NVIDIA A100 80GB PCIe", 80, 4),
        _pcie("NVIDIA A100-PCIE-40GB", 40, 4),
        _pcie("NVIDIA A800-SXM4-80GB", 80, 4),
        _pcie("NVIDIA L4", 22.5, 4),  # 24 GB, ECC on as they ship: 22.5 GiB usable
        _pcie("NVIDIA A10", 22.5, 4),  # likewise
        _pcie("NVIDIA RTX A5000", 24, 4),
        _pcie("NVIDIA GeForce RTX 3090", 24, 4),
        _pcie("NVIDIA GeForce RTX 3090 Ti", 24, 4),
        _pcie("NVIDIA GeForce RTX 4090", 24, 4),
        _pcie("Tesla V100-SXM2-32GB", 32, 3),
        _pcie("Tesla V100-SXM2-16GB", 16, 3),
        _pcie("Tesla V100-PCIE-32GB", 32, 3),
        _pcie("Tesla V100S-PCIE-32GB", 32, 3),
    )
}


def gpu_model(name: str) -> GpuModel:
    """The table's entry for a GPU's full name; one line listing the names otherwise."""
    found = GPUS.get(name.strip())
    if found is None:
        raise UserError(f"unknown GPU {name!r}: name one of {', '.join(repr(n) for n in GPUS)}")
    return found
