"""`act_ckpt`: activation checkpointing of every transformer block (non-reentrant).

Activations inside a block are recomputed in the backward pass instead of stored: memory falls with the
number of layers, compute rises by about one forward. Composes with any executor.
"""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from harness.core.footprint import ActivationFootprint
from strategies.base import ModelTransform, Strategy, StrategyContext


class ActivationCheckpointing(ModelTransform):
    name = "act_ckpt"
    description = "activation checkpointing of every transformer block (recompute in backward)"
    composes_with = frozenset({"amp", "adam8bit", "zero_offload"})
    default_sweep = True
    recompute_forward = 1.0  # every block's forward runs again in backward

    def apply(self, model: nn.Module, ctx: StrategyContext) -> nn.Module:
        # torch's wrapper keeps state_dict keys unchanged, so checkpoints move freely between strategies.
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
            CheckpointImpl,
            checkpoint_wrapper,
        )

        return self.wrap_blocks(
            model, lambda block: checkpoint_wrapper(block, checkpoint_impl=CheckpointImpl.NO_REENTRANT)
        )

    @classmethod
    def activation_footprint(cls, acts: ActivationFootprint) -> ActivationFootprint:
        # Each block keeps only its input; in backward one block at a time is rebuilt with its weight copies.
        return replace(
            acts,
            layer_per_token=acts.block_input_per_token,
            layer_weight_copies=0.0,
            recompute_per_token=acts.layer_per_token,
            recompute_weight_copies=acts.layer_weight_copies,
        )

    @classmethod
    def contract_checks(cls, strategy: Strategy, model: nn.Module) -> None:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointWrapper

        assert all(isinstance(block, CheckpointWrapper) for block in model.blocks)
        assert "blocks.0.attn.qkv.weight" in model.state_dict()  # keys unchanged by the wrapper
