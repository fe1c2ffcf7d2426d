"""`amp`: bf16 autocast (fp16 with loss scaling where bf16 is missing), fused AdamW, SDPA attention.

A strong baseline, not a toy: gradient accumulation over micro-batches, one fused optimizer kernel,
torch.compile when the recipe asks for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from harness.core.footprint import Bytes, ParamShape, StateFootprint
from harness.model import param_groups
from strategies.base import Batch, Executor, StepResult, StrategyContext
from strategies.step_helpers import autocast, evaluating

STATE_FILE = "strategy_state.pt"


class AmpExecutor(Executor):
    name = "amp"
    description = "bf16 autocast, fused AdamW, SDPA flash attention: the baseline"
    default_sweep = True

    @classmethod
    def state_footprint(cls, params: Sequence[ParamShape], precision: str) -> StateFootprint:
        n = sum(p.numel for p in params)
        # fp32 weights and gradients; AdamW's two fp32 moments and a 4-byte step counter per tensor.
        return StateFootprint(
            weights=Bytes(gpu=4 * n),
            gradients=Bytes(gpu=4 * n),
            optimizer_state=Bytes(gpu=8 * n + 4 * len(params)),
        )

    def setup(self, model: nn.Module, ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.model = model.to(ctx.device)  # the model arrives on the host, in fp32
        self.forward = torch.compile(model) if ctx.compile else model
        self.optimizer = self.build_optimizer(model, ctx)
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=ctx.precision == "fp16")

    def build_optimizer(self, model: nn.Module, ctx: StrategyContext) -> torch.optim.Optimizer:
        s = ctx.optimizer
        # fused=True is one kernel for all parameters on CUDA; elsewhere the default (foreach) path.
        return torch.optim.AdamW(
            param_groups(model, s.weight_decay),
            lr=0.0,
            betas=s.betas,
            eps=s.eps,
            fused=True if ctx.device.type == "cuda" else None,
        )

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def train_step(self, micro_batches: Sequence[Batch], lr: float) -> StepResult:
        self.set_lr(lr)
        total = torch.zeros((), device=self.ctx.device)
        for x, y in micro_batches:
            with autocast(self.ctx.device, self.ctx.precision):
                loss = self.forward(x, y)
            self.scaler.scale(loss / len(micro_batches)).backward()
            total += loss.detach()
        self.scaler.unscale_(self.optimizer)
        grad_norm = self.clip_gradients()
        self.optimizer_step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(total / len(micro_batches), grad_norm)

    def optimizer_step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def clip_gradients(self) -> torch.Tensor:
        """Clip the gradients' global norm to the recipe's bound; return the norm before clipping."""
        clip = self.ctx.optimizer.grad_clip or math.inf
        return torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)

    @torch.no_grad()
    def eval_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with evaluating(self.model), autocast(self.ctx.device, self.ctx.precision):
            return self.forward(x, y).float()

    def state_classes(self) -> list[type]:
        """Classes besides plain tensors that the optimizer's state holds (allowed when loading)."""
        return []

    def optimizer_tensors(self) -> list[torch.Tensor]:
        return [t for state in self.optimizer.state.values() for t in state.values() if torch.is_tensor(t)]

    def reset_optimizer_state(self) -> None:
        self.optimizer.state.clear()
        self.scaler = torch.amp.GradScaler(self.ctx.device.type, enabled=self.ctx.precision == "fp16")

    def save(self, directory: Path) -> None:
        torch.save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
            },
            directory / STATE_FILE,
        )

    def load(self, directory: Path) -> None:
        with torch.serialization.safe_globals(self.state_classes()):
            state = torch.load(directory / STATE_FILE, map_location=self.ctx.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])

    def teardown(self) -> None:
        # Idempotent, and safe after a setup that failed half-way (e.g. out of memory moving the model).
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            optimizer.state.clear()
        self.optimizer = self.forward = self.model = None
