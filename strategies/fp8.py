"""`fp8`: torchao float8 training for the transformer's linear layers (tensor-wise scaling).

Each block's four matmuls run in FP8 (e4m3 forward, e5m2 gradients) with a dynamic scale per tensor;
the master weights, the optimizer and everything outside those matmuls stay as the executor keeps them.
The loss head and the embeddings stay in 16 bits. It needs FP8 tensor cores (compute capability 8.9:
Ada, Hopper and later) and torch.compile, which fuses the casts; without compile it is slower than bf16.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import torch
from torch import nn

from harness.core.checks import Check
from harness.core.errors import UserError
from harness.core.footprint import ActivationFootprint
from strategies.base import ModelTransform, Strategy, StrategyContext

MIN_CAPABILITY = (8, 9)


def _in_blocks(module: nn.Module, fqn: str) -> bool:
    """The blocks' linears whose sizes FP8 matmuls take (multiples of 16); never the tied output head."""
    return (
        isinstance(module, nn.Linear)
        and fqn.startswith("blocks.")
        and module.in_features % 16 == 0
        and module.out_features % 16 == 0
    )


REASON_ZERO = "DeepSpeed's bf16 engine holds 16-bit weights; float8 training needs its own casts"


class Float8Training(ModelTransform):
    name = "fp8"
    description = "torchao float8 training of the blocks' linear layers (tensor-wise scales; H100-class GPUs)"
    requires = ("torchao",)
    runs_on_cpu = False
    experimental = True
    needs_blocks = False
    needs_compile = True  # its casts are fused by torch.compile; eager float8 is refused in `apply`
    speed_unmodelled = "float8 matmuls run faster than the 16-bit peak the model divides by"
    composes_with = frozenset(
        {"amp", "adam8bit", "ao_adam8bit", "ao_adam4bit", "paged_adam8bit", "ao_cpu_offload", "act_ckpt",
         "sel_ckpt", "act_offload", "fused_ce"}
    )  # fmt: skip
    refuses: ClassVar[dict[str, str]] = {
        "zero_offload": REASON_ZERO,
        "zero_offload_fp32acc": REASON_ZERO,
        "fsdp2_offload": "FSDP2 needs torchao's FSDP-aware float8 casts, which are not set up here",
    }
    changes_math = "the blocks' matmuls compute in FP8 with per-tensor scales, so the loss differs"
    report_note = (
        "MFU is counted against the 16-bit peak as for every strategy; dense FP8 tensor cores peak at "
        "twice that (H100 SXM: 1,979 TFLOP/s)"
    )

    @classmethod
    def doctor(cls, cuda: bool) -> list[Check]:
        if not cuda:
            return [Check("fp8 tensor cores", False, "no CUDA device")]
        capability = torch.cuda.get_device_capability()
        ok = capability >= MIN_CAPABILITY
        return [Check("fp8 tensor cores", ok, f"compute capability {capability[0]}.{capability[1]}")]

    def apply(self, model: nn.Module, ctx: StrategyContext) -> nn.Module:
        if ctx.device.type != "cuda" or torch.cuda.get_device_capability(ctx.device) < MIN_CAPABILITY:
            raise UserError("fp8 needs FP8 tensor cores (an Ada or Hopper GPU, compute capability 8.9+)")
        if not ctx.compile:
            raise UserError("fp8 needs torch.compile to fuse its casts: drop --set compile=false")
        logging.getLogger("torchao").setLevel(logging.ERROR)
        from torchao.float8 import Float8LinearConfig, convert_to_float8_training

        config = Float8LinearConfig.from_recipe_name("tensorwise")
        return convert_to_float8_training(model, config=config, module_filter_fn=_in_blocks)

    @classmethod
    def activation_footprint(cls, acts: ActivationFootprint) -> ActivationFootprint:
        # Predicted as autocast: an upper bound (FP8 keeps some matmul inputs in 1 byte instead of 2).
        return acts

    @classmethod
    def contract_checks(cls, strategy: Strategy, model: nn.Module) -> None:
        assert type(model.blocks[0].mlp.fc).__name__ == "Float8Linear"
