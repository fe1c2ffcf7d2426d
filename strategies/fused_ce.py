"""`fused_ce`: a fused linear + cross-entropy (Liger's kernel) that never materialises the full logits.

The output matmul and the loss run chunk by chunk over the tokens, and the gradients of both are
computed in the same pass, so the batch's logits (fp32: 4 bytes x 50K vocabulary per token, most of
gpt2-124m's activation peak) never exist at once. The math is the same cross-entropy in fp32; only the
order of summation differs. Triton kernels: CUDA only (an extra installed in the image).
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import torch
from torch import nn

from harness.core.checks import Check
from harness.core.errors import UserError
from harness.core.footprint import ActivationFootprint
from strategies.base import ModelTransform, Strategy, StrategyContext

REASON_ZERO = "DeepSpeed's engine computes the loss through the model it wraps; not verified"


class LigerLoss(nn.Module):
    """GPT's loss head (harness.model.LogitsLoss) through Liger's fused kernel."""

    def __init__(self) -> None:
        super().__init__()
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        self.loss = LigerFusedLinearCrossEntropyLoss()

    def forward(self, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if torch.is_autocast_enabled(hidden.device.type):  # the kernel sees no autocast: cast as it would
            dtype = torch.get_autocast_dtype(hidden.device.type)
            hidden, weight = hidden.to(dtype), weight.to(dtype)
        return self.loss(weight, hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1))


class FusedCrossEntropy(ModelTransform):
    name = "fused_ce"
    description = "fused linear + cross-entropy (Liger): the full logits never exist"
    requires = ("liger_kernel",)
    install_hint = "pip install '.[gpu]' on a CUDA machine (the image has it)"
    runs_on_cpu = False
    experimental = True
    needs_blocks = False
    composes_with = frozenset(
        {"amp", "adam8bit", "ao_adam8bit", "ao_adam4bit", "paged_adam8bit", "ao_cpu_offload", "act_ckpt",
         "sel_ckpt", "act_offload"}
    )  # fmt: skip

    refuses: ClassVar[dict[str, str]] = {
        "zero_offload": REASON_ZERO,
        "zero_offload_fp32acc": REASON_ZERO,
        "fsdp2_offload": "not verified with FSDP2's sharded output matrix",
    }

    @classmethod
    def doctor(cls, cuda: bool) -> list[Check]:
        missing = cls.missing_libraries()
        if missing:
            return [Check("liger-kernel", False, "not installed: pip install '.[gpu]' (it is in the image)")]
        return [
            Check("liger-kernel", True, "installed" + ("" if cuda else " (its Triton kernels need CUDA)"))
        ]

    def apply(self, model: nn.Module, ctx: StrategyContext) -> nn.Module:
        if not hasattr(model, "loss_head"):
            raise UserError(f"{self.name} replaces a model's loss head; {type(model).__name__} has none")
        model.loss_head = LigerLoss()
        return model

    @classmethod
    def activation_footprint(cls, acts: ActivationFootprint) -> ActivationFootprint:
        # Saved instead of the log-probabilities: the hidden state's gradient (computed in the forward
        # pass, as wide as the matmul's input) and, beside the 16-bit weight copy, the output matrix's
        # gradient in the same dtype. No logits beyond one chunk. (In fp32 there is no weight copy and the
        # 4·V·d gradient is missed: the kernel is for 16-bit training.)
        return replace(
            acts,
            head_per_token=acts.head_per_token - acts.logprobs_per_token + acts.head_input_per_token,
            logprobs_per_token=0.0,
            transient_per_token=0.0,
            head_weight_copies=2 * acts.head_weight_copies,
        )

    @classmethod
    def contract_checks(cls, strategy: Strategy, model: nn.Module) -> None:
        assert isinstance(model.loss_head, LigerLoss)
