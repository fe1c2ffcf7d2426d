"""Peak dense 16-bit tensor-core throughput by exact product name, and MFU against it (no torch here).

Each entry matches the whole name torch reports for one product. Its figure is the vendor datasheet's
BF16 (FP16 where the product has no BF16) tensor-core rate without sparsity, with FP32 accumulation,
that is, half the "with sparsity" figure most datasheets print. A device that matches no entry has no
peak ("n/a"). A peak is never guessed from a similar name.
"""

from __future__ import annotations

import re

# (full-name pattern, dense TFLOP/s, the entry recorded with every MFU figure)
PEAK_TFLOPS: tuple[tuple[str, float, str], ...] = (
    (r"NVIDIA H100 80GB HBM3", 989.5, "H100 SXM5, BF16 dense (1,979 with sparsity)"),
    (r"NVIDIA H100 PCIe", 756.5, "H100 PCIe, BF16 dense (1,513 with sparsity)"),
    (r"NVIDIA H100 NVL", 835.5, "H100 NVL, BF16 dense (1,671 with sparsity)"),
    (r"NVIDIA H200", 989.5, "H200 SXM, BF16 dense (1,979 with sparsity)"),
    (r"NVIDIA H200 NVL", 835.5, "H200 NVL, BF16 dense (1,671 with sparsity)"),
    (r"NVIDIA GH200 (96|120|144|480)GB", 989.5, "GH200, BF16 dense (1,979 with sparsity)"),
    (r"NVIDIA H800", 989.5, "H800 SXM5, BF16 dense (1,979 with sparsity)"),
    (r"NVIDIA B200", 2250.0, "B200 (HGX), BF16 dense (4,500 with sparsity)"),
    (r"NVIDIA A100-SXM4-(40|80)GB", 312.0, "A100 SXM4, BF16 dense (624 with sparsity)"),
    (r"NVIDIA A100-PCIE-40GB|NVIDIA A100 80GB PCIe", 312.0, "A100 PCIe, BF16 dense (624 with sparsity)"),
    (r"NVIDIA A800-SXM4-80GB|NVIDIA A800 80GB PCIe", 312.0, "A800, BF16 dense (624 with sparsity)"),
    (r"NVIDIA L4", 121.0, "L4, BF16 dense (242 with sparsity)"),
    (r"NVIDIA A10", 125.0, "A10, BF16 dense (250 with sparsity)"),
    (r"NVIDIA RTX A5000", 111.1, "RTX A5000, FP16/BF16 tensor dense (222.2 with sparsity)"),
    (
        r"NVIDIA GeForce RTX 3090",
        71.0,
        "RTX 3090, FP16/BF16 with FP32 accumulate, dense (142 with sparsity)",
    ),
    (
        r"NVIDIA GeForce RTX 3090 Ti",
        80.0,
        "RTX 3090 Ti, FP16/BF16 with FP32 accumulate, dense (160 with sparsity)",
    ),
    (
        r"NVIDIA GeForce RTX 4090",
        165.2,
        "RTX 4090, FP16/BF16 with FP32 accumulate, dense (330.3 with sparsity)",
    ),
    (r"Tesla V100-SXM2-(16|32)GB", 125.0, "V100 SXM2, FP16 tensor (no BF16)"),
    (r"Tesla V100-PCIE-(16|32)GB", 112.0, "V100 PCIe, FP16 tensor (no BF16)"),
    (r"Tesla V100S-PCIE-32GB", 130.0, "V100S PCIe, FP16 tensor (no BF16)"),
)


def peak_tflops(device_name: str) -> tuple[float | None, str | None]:
    """(peak TFLOP/s, the table entry used) for a device name; (None, None) if unknown or a CPU."""
    for pattern, tflops, entry in PEAK_TFLOPS:
        if re.fullmatch(pattern, device_name.strip()):
            return tflops, entry
    return None, None


def mfu(flops_per_token: float, tokens_per_s: float | None, peak: float | None) -> float | None:
    """Model FLOPs utilization: achieved model FLOP/s over the device's peak (both in FLOP/s)."""
    if not tokens_per_s or not peak:
        return None
    return flops_per_token * tokens_per_s / (peak * 1e12)
