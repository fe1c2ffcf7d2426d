"""`act_offload`: what each transformer block saves for backward waits in (pinned) host memory.

Every tensor a block saves is copied to the host as the forward pass makes it and back when backward
needs it (`torch.autograd.graph.save_on_cpu`). GPU memory for activations falls to one block's worth plus
the loss head; each step moves every saved byte over PCIe twice, which the speed figures include. The
math is unchanged.

It does not combine with checkpointing: a checkpointed block keeps its inputs (and, selectively, its
matmul outputs) outside the saved-tensor hooks that offload, so nothing would move.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import ClassVar

import torch
from torch import nn

from harness.core.footprint import ActivationFootprint
from strategies.base import ModelTransform, Strategy, StrategyContext

_WHY_NOT_WITH_CHECKPOINTING = (
    "checkpointing keeps what a block needs outside the hooks that offload, so nothing would move: choose one"
)


@cache
def offloading_wrapper(pin_memory: bool):
    """torch's ActivationWrapper (state_dict keys unchanged) running its module under save_on_cpu."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import ActivationWrapper

    class OffloadedActivations(ActivationWrapper):
        def forward(self, *args, **kwargs):
            with torch.autograd.graph.save_on_cpu(pin_memory=pin_memory):
                return self._checkpoint_wrapped_module(*args, **kwargs)

    return OffloadedActivations


class ActivationOffload(ModelTransform):
    name = "act_offload"
    description = "activation offload: each block's saved tensors wait in pinned host memory"
    composes_with = frozenset({"amp", "adam8bit", "zero_offload", "zero_offload_fp32acc"})
    experimental = True  # runs on the CPU; its CUDA path (pinned copies) awaits a GPU run
    speed_unmodelled = "the saved activations' copies to the host and back"
    refuses: ClassVar[dict[str, str]] = {
        "act_ckpt": _WHY_NOT_WITH_CHECKPOINTING,
        "sel_ckpt": _WHY_NOT_WITH_CHECKPOINTING,
    }
    report_note = "saved activations cross PCIe twice per step (to the host and back), inside the clock"

    def apply(self, model: nn.Module, ctx: StrategyContext) -> nn.Module:
        # Pinned pages make the copies asynchronous; there is nothing to pin for without a GPU.
        wrapper = offloading_wrapper(pin_memory=ctx is not None and ctx.device.type == "cuda")
        return self.wrap_blocks(model, wrapper)

    @classmethod
    def activation_footprint(cls, acts: ActivationFootprint) -> ActivationFootprint:
        return replace(acts, layers_on_host=True)

    @classmethod
    def contract_checks(cls, strategy: Strategy, model: nn.Module) -> None:
        assert all(type(block).__name__ == "OffloadedActivations" for block in model.blocks)
        assert "blocks.0.attn.qkv.weight" in model.state_dict()  # keys unchanged by the wrapper
