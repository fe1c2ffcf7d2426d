"""`ao_adam8bit`, `ao_adam4bit`: torchao's low-bit AdamW (the torch-native peer of `adam8bit`).

Both moments are stored block-wise quantized (8 bits in blocks of 256, or 4 bits in blocks of 128) with a
dynamic-tree lookup table; each parameter's update is one torch.compile'd kernel, compiled once per
shape during the untimed warm-up. Like bitsandbytes, tensors under 4096 values keep 32-bit moments;
unlike `adam8bit`, embeddings are quantized too (torchao has no per-parameter override). Everything else
is `amp`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from harness.core.checks import Check
from harness.core.footprint import Bytes, ParamShape, StateFootprint
from harness.model import param_groups
from strategies.amp import AmpExecutor
from strategies.base import Strategy, StrategyContext


def _import_optim():
    # torchao logs a line per optional CUDA extension it cannot load (FP8/MX kernels): not our concern here.
    logging.getLogger("torchao").setLevel(logging.ERROR)
    import torchao.optim

    return torchao.optim


class _AoLowBitAdam(AmpExecutor):
    requires = ("torchao",)
    default_sweep = False
    experimental = True  # runs on the CPU; its CUDA path awaits a GPU run
    composes_with = frozenset({"act_ckpt", "sel_ckpt", "act_offload"})
    optimizer_class: ClassVar[str]
    bits: ClassVar[int]
    block: ClassVar[int]
    qmap_entries: ClassVar[int]
    MIN_QUANTIZED = 4096  # torchao follows bitsandbytes: smaller tensors keep 32-bit moments

    @classmethod
    def doctor(cls, cuda: bool) -> list[Check]:
        """torchao imports without its optional CUDA extensions; its optimizers need only torch.compile."""
        try:
            optim = _import_optim()
            getattr(optim, cls.optimizer_class)
        except Exception as exc:
            return [Check("torchao optimizers", False, f"{type(exc).__name__}: {exc}"[:300])]
        import torchao

        return [Check("torchao optimizers", True, f"torchao {torchao.__version__}")]

    @classmethod
    def state_footprint(cls, params: Sequence[ParamShape], precision: str) -> StateFootprint:
        n = sum(p.numel for p in params)
        state = 0
        for p in params:
            if p.numel >= cls.MIN_QUANTIZED and p.numel % cls.block == 0:
                codes, scales = p.numel * cls.bits // 8, 4 * (p.numel // cls.block)
                state += 2 * (codes + scales + 4 * cls.qmap_entries)  # two moments, each with its own map
            else:
                state += 2 * 4 * p.numel
        # torchao keeps each parameter's step counter as a host scalar, whatever the device.
        return StateFootprint(
            weights=Bytes(gpu=4 * n),
            gradients=Bytes(gpu=4 * n),
            optimizer_state=Bytes(gpu=state, host=4 * len(params)),
        )

    def build_optimizer(self, model: nn.Module, ctx: StrategyContext) -> torch.optim.Optimizer:
        s = ctx.optimizer
        optimizer_class = getattr(_import_optim(), self.optimizer_class)
        return optimizer_class(param_groups(model, s.weight_decay), lr=0.0, betas=s.betas, eps=s.eps)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"].fill_(lr)  # torchao keeps lr as a tensor so its compiled step never recompiles

    def state_classes(self) -> list[type]:
        from torchao.optim.subclass_4bit import OptimState4bit
        from torchao.optim.subclass_8bit import OptimState8bit

        return [OptimState8bit, OptimState4bit]

    def optimizer_tensors(self) -> list[torch.Tensor]:
        """The plain tensors under torchao's quantized-state subclasses (codes, scales, lookup tables)."""
        found = []
        for state in self.optimizer.state.values():
            for value in state.values():
                if not torch.is_tensor(value):
                    continue
                if hasattr(value, "__tensor_flatten__"):
                    names, _ = value.__tensor_flatten__()
                    found += [getattr(value, name) for name in names]
                else:
                    found.append(value)
        return found

    @classmethod
    def contract_checks(cls, strategy: Strategy, model: nn.Module) -> None:
        state = strategy.executor.optimizer.state[model.blocks[0].mlp.fc.weight]
        assert type(state["exp_avg"]).__name__ == f"OptimState{cls.bits}bit"
        assert state["exp_avg"].codes.dtype == torch.uint8
        embedding = strategy.executor.optimizer.state[model.wte.weight]
        assert type(embedding["exp_avg_sq"]).__name__ == f"OptimState{cls.bits}bit"  # no 32-bit exception


class AoAdam8bit(_AoLowBitAdam):
    name = "ao_adam8bit"
    description = "torchao 8-bit AdamW (block-wise quantized moments), otherwise as amp"
    changes_math = "optimizer moments are stored block-wise quantized in 8 bits, so updates differ slightly"
    optimizer_class, bits, block, qmap_entries = "AdamW8bit", 8, 256, 256


class AoAdam4bit(_AoLowBitAdam):
    name = "ao_adam4bit"
    description = "torchao 4-bit AdamW (block-wise quantized moments), otherwise as amp"
    changes_math = "optimizer moments are stored block-wise quantized in 4 bits, so updates differ"
    optimizer_class, bits, block, qmap_entries = "AdamW4bit", 4, 128, 16
    # 200 steps of tiny on the CPU (fp32) differ from amp by 9.1e-2 at most (1.1e-2 at the end): 16 levels
    # per moment move early updates more than 8-bit state does (7.1e-3 for ao_adam8bit).
    parity_bounds: ClassVar[dict[str, float]] = {"fp32": 0.15, "bf16": 0.15, "fp16": 0.15}
