"""Resolving 'auto' settings against the machine: device, precision, compile, default micro-batch."""

from __future__ import annotations

from collections.abc import Callable

import torch

from harness.errors import UserError


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("device cuda requested but torch sees no CUDA device: use --device cpu")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def resolve_precision(requested: str, device: torch.device) -> str:
    """auto: bf16 on GPUs that have it, fp16 (with loss scaling) on older GPUs, fp32 on the CPU."""
    if requested != "auto":
        if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError("this GPU has no bf16: use --set precision=fp16 (or auto)")
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def resolve_compile(requested: bool | None, device: torch.device) -> bool:
    """The recipe switch: on by default for CUDA, off elsewhere (CPU compile costs more than it saves)."""
    return device.type == "cuda" if requested is None else requested


def synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def divisors_at_most(total: int, cap: int) -> list[int]:
    """Divisors of `total` not above `cap`, largest first."""
    return [d for d in range(min(total, cap), 0, -1) if total % d == 0]


def check_micro_batch(micro_batch: int, global_batch_seqs: int) -> None:
    if global_batch_seqs % micro_batch:
        valid = divisors_at_most(global_batch_seqs, global_batch_seqs)
        raise UserError(
            f"micro_batch={micro_batch} does not divide the global batch of {global_batch_seqs} sequences: "
            f"use one of {', '.join(map(str, sorted(valid)))}"
        )
