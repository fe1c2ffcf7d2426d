"""`ao_cpu_offload`: torchao's `CPUOffloadOptimizer` around a fused CPU AdamW: ZeRO-Offload's idea without
DeepSpeed.

Every parameter of 4096 values or more has a pinned fp32 copy on the host with a pinned gradient buffer;
its gradient is copied there as backward produces it (on a side stream), the fused CPU AdamW updates the
host copy, and the result is copied back before the next forward. Smaller tensors stay on the GPU with a
GPU AdamW. The model computes as `amp` does (fp32 weights, autocast), so the math is unchanged.

`offload_gradients` (freeing each GPU gradient once copied) stays off: it does not combine with gradient
accumulation, which the recipe's global batch needs. Gradients are clipped on the GPU and the same factor
is applied to the host copies before the step, so clipping matches `amp`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from harness.core.errors import UserError
from harness.core.footprint import Bytes, HostStep, ParamShape, StateFootprint
from harness.model import param_groups
from strategies.amp import AmpExecutor
from strategies.ao_adam import _import_optim
from strategies.base import Strategy, StrategyContext
from strategies.step_helpers import host_optimizer_step

MIN_OFFLOADED = 4096  # torchao's minimal_size: smaller tensors keep a GPU optimizer


class AoCpuOffloadExecutor(AmpExecutor):
    name = "ao_cpu_offload"
    description = "torchao CPUOffloadOptimizer: pinned fp32 copies, gradients and a fused AdamW on the host"
    requires = ("torchao",)
    runs_on_cpu = False
    experimental = True
    default_sweep = False
    optimizer_state_device = "cpu"
    # The fused CPU AdamW steps the pinned fp32 copies, which go back to the GPU before the next forward; each
    # micro-batch's fp32 gradients come to the host as backward makes them (on a side stream).
    host_step = HostStep(
        optimizer="torch AdamW (fused, CPU)", exposed_bytes_per_param=4, overlapped_bytes_per_param=4
    )

    @classmethod
    def host_step_benchmark(cls, params: list[torch.Tensor]) -> Callable[[], None]:
        return torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), fused=True).step

    composes_with = frozenset({"act_ckpt", "sel_ckpt", "act_offload"})
    report_note = "gradients cross PCIe once per micro-batch (offload_gradients is off for accumulation)"

    @classmethod
    def state_footprint(cls, params: Sequence[ParamShape], precision: str) -> StateFootprint:
        n = sum(p.numel for p in params)
        big = [p for p in params if p.numel >= MIN_OFFLOADED]
        small = [p for p in params if p.numel < MIN_OFFLOADED]
        offloaded, kept = sum(p.numel for p in big), sum(p.numel for p in small)
        return StateFootprint(
            weights=Bytes(gpu=4 * n),
            gradients=Bytes(gpu=4 * n),
            # Host: two moments and a step counter per offloaded tensor; GPU: the same for the small ones.
            optimizer_state=Bytes(gpu=8 * kept + 4 * len(small), host=8 * offloaded + 4 * len(big)),
            master_weights=Bytes(host=4 * offloaded),  # the pinned copies the CPU AdamW updates
            grad_buffers=Bytes(host=4 * offloaded),  # their pinned gradient buffers
        )

    def build_optimizer(self, model: nn.Module, ctx: StrategyContext) -> torch.optim.Optimizer:
        if ctx.device.type != "cuda":
            raise UserError(f"{self.name} needs a CUDA device: torchao offloads from the GPU only")
        if ctx.precision == "fp16":
            raise UserError(f"{self.name} runs in bf16 or fp32 (a loss scaler cannot see the host gradients)")
        s = ctx.optimizer
        return _import_optim().CPUOffloadOptimizer(
            param_groups(model, s.weight_decay),
            torch.optim.AdamW,
            offload_gradients=False,
            minimal_size=MIN_OFFLOADED,
            lr=0.0,
            betas=s.betas,
            eps=s.eps,
            fused=True,
        )

    def optimizer_step(self) -> None:
        with host_optimizer_step():
            super().optimizer_step()

    def clip_gradients(self) -> torch.Tensor:
        """amp's clipping, and the same factor on the host copies (taken by backward, before clipping)."""
        grad_norm = super().clip_gradients()
        clip = self.ctx.optimizer.grad_clip or math.inf
        if not math.isinf(clip):
            factor = torch.clamp(clip / (grad_norm + 1e-6), max=1.0).to("cpu")
            self.optimizer.stream.synchronize()  # every gradient copy has landed
            for host in self.optimizer.param_d2h_map.values():
                host.grad.mul_(factor)
        return grad_norm

    def _inner_optimizers(self) -> list[torch.optim.Optimizer]:
        """torchao's per-tensor host AdamWs and the GPU one for small tensors."""
        optimizer = getattr(self, "optimizer", None)
        if optimizer is None:
            return []
        return [*optimizer.optim_dict.values(), *filter(None, [optimizer.d_opt])]

    def optimizer_tensors(self) -> list[torch.Tensor]:
        states = [state for opt in self._inner_optimizers() for state in opt.state.values()]
        return [t for state in states for t in state.values() if torch.is_tensor(t)]

    def master_tensors(self) -> list[torch.Tensor]:
        return list(self.optimizer.param_d2h_map.values())

    def gradient_buffer_tensors(self) -> list[torch.Tensor]:
        return [host.grad for host in self.optimizer.param_d2h_map.values()]

    def reset_optimizer_state(self) -> None:
        for opt in self._inner_optimizers():
            opt.state.clear()
        self.scaler = torch.amp.GradScaler(self.ctx.device.type, enabled=False)

    @classmethod
    def contract_checks(cls, strategy: Strategy, model: nn.Module) -> None:
        masters = strategy.executor.master_tensors()
        assert masters and all(t.device.type == "cpu" and t.is_pinned() for t in masters)

    def teardown(self) -> None:
        for opt in self._inner_optimizers():
            opt.state.clear()
        self.optimizer = self.forward = self.model = None
