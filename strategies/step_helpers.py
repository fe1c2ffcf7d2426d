"""What a strategy's step uses around its math: autocast at the run's precision, eval mode for an evaluation,
and the profile label of a host optimizer step."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

# The name under which a strategy's optimizer step on the host shows in a profile (the device waits on it;
# benchmarks/profile_step.py reports it beside the device's kernels).
HOST_OPTIMIZER_STEP = "host optimizer step"


def host_optimizer_step() -> contextlib.AbstractContextManager:
    return torch.profiler.record_function(HOST_OPTIMIZER_STEP)


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """The module in eval mode for an evaluation, back in training mode after it, whatever happens."""
    module.eval()
    try:
        yield
    finally:
        module.train()


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
