"""`adam8bit`: bitsandbytes 8-bit AdamW; everything else as `amp`.

The library's guidance for language models is 32-bit optimizer state for embeddings (their gradients are
sparse and badly served by block-wise quantization), so every nn.Embedding keeps 32-bit state.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.core.checks import Check
from harness.model import param_groups
from strategies.amp import AmpStrategy
from strategies.base import Strategy, StrategyContext


class Adam8bitStrategy(AmpStrategy):
    name = "adam8bit"
    description = "bitsandbytes 8-bit AdamW (32-bit state for embeddings), otherwise as amp"
    requires = ("bitsandbytes",)
    composes_with = frozenset({"act_ckpt"})
    changes_math = "optimizer moments are stored block-wise quantized in 8 bits, so updates differ slightly"
    report_note = (
        "bitsandbytes synchronizes the GPU once per parameter tensor in its optimizer step (a library cost, "
        "included in its figures)"
    )
    default_sweep = True

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
        for weight in getattr(self, "_embedding_weights", []):
            manager.override_config(weight, "optim_bits", 32)
        return bnb.optim.AdamW8bit(param_groups(model, s.weight_decay), lr=0.0, betas=s.betas, eps=s.eps)

    def teardown(self) -> None:
        import bitsandbytes as bnb

        # The manager is a process-wide singleton keyed by id(param): forget ours so a later model whose
        # parameters reuse those ids is not silently given 32-bit state.
        manager = bnb.optim.GlobalOptimManager.get_instance()
        for weight in getattr(self, "_embedding_weights", []):
            manager.pid2config.pop(id(weight), None)
        self._embedding_weights = []
        super().teardown()
