"""`sel_ckpt`: selective activation checkpointing of every transformer block, as torchtitan does.

Inside each block the outputs of the matmuls and of attention are kept; the cheap pointwise work around
them (layer norms, GELU, residual adds, dtype casts) is recomputed in backward. It keeps most of
checkpointing's saving on the wide MLP activations at a fraction of its recompute cost. The math is
unchanged. Exclusive with `act_ckpt`: both decide what a block keeps for backward.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import ClassVar

import torch
from torch import nn

from harness.core.footprint import ActivationFootprint
from strategies.act_ckpt import ActivationCheckpointing
from strategies.base import ModelTransform, Strategy, StrategyContext


def _kept_ops() -> frozenset:
    """The ops whose outputs are kept: every matmul and every attention kernel torch may pick."""
    aten = torch.ops.aten
    names = (
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
    )
    attention = [getattr(aten, n).default for n in names if hasattr(aten, n)]
    return frozenset([aten.mm.default, aten.addmm.default, aten.bmm.default, *attention])


def _policy(kept: frozenset, ctx, func, *args, **kwargs):
    from torch.utils.checkpoint import CheckpointPolicy

    return CheckpointPolicy.MUST_SAVE if func in kept else CheckpointPolicy.PREFER_RECOMPUTE


def _context_fn(kept: frozenset):
    from torch.utils.checkpoint import create_selective_checkpoint_contexts

    return create_selective_checkpoint_contexts(partial(_policy, kept))


class SelectiveCheckpointing(ModelTransform):
    name = "sel_ckpt"
    description = "selective checkpointing: keep matmul and attention outputs, recompute pointwise ops"
    composes_with = frozenset({"amp", "adam8bit", "zero_offload", "zero_offload_fp32acc"})
    recompute_forward = 0.0  # pointwise work only: no matmul runs twice
    experimental = True  # runs on the CPU; its CUDA path awaits a GPU run
    refuses: ClassVar[dict[str, str]] = {
        "act_ckpt": "both decide what a block keeps for backward: choose one"
    }

    def apply(self, model: nn.Module, ctx: StrategyContext) -> nn.Module:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
            CheckpointImpl,
            checkpoint_wrapper,
        )

        # torch's wrapper keeps state_dict keys unchanged; context_fn selects what is kept.
        context_fn = partial(_context_fn, _kept_ops())
        return self.wrap_blocks(
            model,
            lambda block: checkpoint_wrapper(
                block, checkpoint_impl=CheckpointImpl.NO_REENTRANT, context_fn=context_fn
            ),
        )

    @classmethod
    def activation_footprint(cls, acts: ActivationFootprint) -> ActivationFootprint:
        # Kept per block: its input and its matmul and attention outputs. The pointwise intermediates and
        # the 16-bit weight copies are rebuilt in backward, one block at a time.
        return replace(
            acts,
            layer_per_token=acts.block_input_per_token + acts.matmul_outputs_per_token,
            layer_weight_copies=0.0,
            recompute_per_token=acts.layer_per_token - acts.block_input_per_token,
            recompute_weight_copies=acts.layer_weight_copies,
        )

    @classmethod
    def contract_checks(cls, strategy: Strategy, model: nn.Module) -> None:
        ActivationCheckpointing.contract_checks(strategy, model)  # the same wrapper, the same keys
