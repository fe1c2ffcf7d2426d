"""`adam8bit`: bitsandbytes 8-bit AdamW; everything else as `amp`.

The library's guidance for language models is 32-bit optimizer state for embeddings (their gradients are
sparse and badly served by block-wise quantization), so every nn.Embedding keeps 32-bit state.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from harness.core.checks import Check
from harness.core.footprint import Bytes, ParamShape, StateFootprint
from harness.model import param_groups
from strategies.amp import AmpExecutor
from strategies.base import Strategy, StrategyContext


class Adam8bitExecutor(AmpExecutor):
    name = "adam8bit"
    description = "bitsandbytes 8-bit AdamW (32-bit state for embeddings), otherwise as amp"
    requires = ("bitsandbytes",)
    changes_math = "optimizer moments are stored block-wise quantized in 8 bits, so updates differ slightly"
    report_note = (
        "bitsandbytes synchronizes the GPU once per parameter tensor in its optimizer step (a library cost, "
        "included in its figures)"
    )
    default_sweep = True
    optimizer_class = "AdamW8bit"  # in bitsandbytes.optim

    @classmethod
    def doctor(cls, cuda: bool) -> list[Check]:
        """bitsandbytes imports even when its native library is missing: check that the library loaded."""
        name = "bitsandbytes native library"
        try:
            from bitsandbytes.cextension import ErrorHandlerMockBNBNativeLibrary, lib
        except Exception as exc:
            return [Check(name, False, f"import fails: {type(exc).__name__}: {exc}"[:300])]
        if isinstance(lib, ErrorHandlerMockBNBNativeLibrary):
            return [Check(name, False, "no native library was found")]
        if cuda and not lib.compiled_with_cuda:
            return [Check(name, False, "loaded the CPU library, not the CUDA one")]
        return [Check(name, True, "CUDA library" if lib.compiled_with_cuda else "CPU library")]

    # bitsandbytes' rules: tensors under 4096 elements keep 32-bit state; 8-bit state is quantized in
    # blocks of 256 with one fp32 absmax per block per moment, and two 256-entry fp32 maps shared by all.
    MIN_8BIT_SIZE, BLOCK, QMAP_BYTES = 4096, 256, 2 * 256 * 4

    @classmethod
    def state_footprint(cls, params: Sequence[ParamShape], precision: str) -> StateFootprint:
        n = sum(p.numel for p in params)
        state = 0
        quantized = {p for p in params if not p.embedding and p.numel >= cls.MIN_8BIT_SIZE}
        for p in params:
            if p in quantized:
                state += 2 * p.numel + 2 * 4 * -(-p.numel // cls.BLOCK)
            else:
                state += 8 * p.numel
        state += cls.QMAP_BYTES if quantized else 0
        return StateFootprint(
            weights=Bytes(gpu=4 * n), gradients=Bytes(gpu=4 * n), optimizer_state=Bytes(gpu=state)
        )

    @classmethod
    def contract_checks(cls, strategy: Strategy, model: nn.Module) -> None:
        state = strategy.executor.optimizer.state
        assert state[model.blocks[0].mlp.fc.weight]["state1"].dtype == torch.uint8
        assert state[model.wte.weight]["state1"].dtype == torch.float32  # embeddings keep 32-bit state

    def build_optimizer(self, model: nn.Module, ctx: StrategyContext) -> torch.optim.Optimizer:
        import bitsandbytes as bnb

        s = ctx.optimizer
        manager = bnb.optim.GlobalOptimManager.get_instance()
        self._embedding_weights = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
        for weight in self._embedding_weights:
            manager.override_config(weight, "optim_bits", 32)
        return self.optimizer_type()(param_groups(model, s.weight_decay), lr=0.0, betas=s.betas, eps=s.eps)

    def optimizer_type(self) -> type:
        import bitsandbytes as bnb

        return getattr(bnb.optim, self.optimizer_class)

    def teardown(self) -> None:
        import bitsandbytes as bnb

        # The manager is a process-wide singleton keyed by id(param): forget ours so a later model whose
        # parameters reuse those ids is not silently given 32-bit state.
        manager = bnb.optim.GlobalOptimManager.get_instance()
        for weight in getattr(self, "_embedding_weights", []):
            manager.pid2config.pop(id(weight), None)
        self._embedding_weights = []
        super().teardown()
