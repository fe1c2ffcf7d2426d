"""Peak dense bf16 tensor-core throughput by device name, and MFU against it (no torch here)."""

from __future__ import annotations

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
