"""Resolving 'auto' settings against the machine: device, precision, compile, default micro-batch."""

from __future__ import annotations

import traceback
from collections.abc import Callable

import torch

from harness.core.errors import UserError


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("device cuda requested but torch sees no CUDA device: use --device cpu")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def apply_memory_cap(device: torch.device, cap_gib: float | None) -> float | None:
    """Limit torch's allocator to `cap_gib` on this device (a smaller card emulated on a larger one);
    no cap lifts any earlier one in this process. Allocations outside torch's allocator (CUDA context,
    cuBLAS workspaces, NCCL) are not covered."""
    if device.type != "cuda":
        if cap_gib is not None:
            raise UserError("--gpu-memory-gib caps a CUDA GPU: this run is on the CPU")
        return None
    total = torch.cuda.get_device_properties(device).total_memory
    if cap_gib is not None and cap_gib * 2**30 > total:
        raise UserError(f"--gpu-memory-gib {cap_gib:g} is more than this GPU has ({total / 2**30:.1f} GiB)")
    fraction = 1.0 if cap_gib is None else cap_gib * 2**30 / total
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    return cap_gib


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


# Messages of out-of-memory failures that do not arrive as torch.OutOfMemoryError: cuBLAS / cuDNN handle
# or workspace allocations, NCCL buffers, a library's own cudaMalloc, host allocations for pinned memory.
_OOM_MARKERS = (
    "out of memory",
    "cublas_status_alloc_failed",
    "cudnn_status_alloc_failed",
    "cudaerrormemoryallocation",
    "failed to allocate",
    "cannot allocate memory",
)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether a failure means "does not fit": torch's own OOM, or another library's, by its message,
    also when it was re-raised wrapped in another exception (its cause or context)."""
    for current in _chain(exc):
        if isinstance(current, torch.OutOfMemoryError | MemoryError):
            return True
        if any(marker in str(current).lower() for marker in _OOM_MARKERS):
            return True
    return False


def _chain(exc: BaseException):
    """`exc` and the exceptions it was raised from or during, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_host_out_of_memory(exc: BaseException) -> bool:
    """Whether an out-of-memory is the host's: Python's MemoryError, the kernel refusing an allocation
    (ENOMEM, "Cannot allocate memory"), or a pinned host allocation (cudaHostAlloc fails with "CUDA error:
    out of memory", raised inside a `pin_memory` call), which a GPU memory cap does not govern."""
    for current in _chain(exc):
        message = str(current).lower()
        if isinstance(current, MemoryError) or "cannot allocate memory" in message:
            return True
        frames = traceback.extract_tb(current.__traceback__) if current.__traceback__ else []
        if "out of memory" in message and any("pin" in frame.name for frame in frames):
            return True
    return False


def compiled_graph_count() -> int:
    """Graphs torch.compile has built in this process so far: a rise inside the timed loop is a recompile."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
