"""`fsdp2_offload`: PyTorch FSDP2 (`fully_shard`) on one rank with `CPUOffloadPolicy`: the torch-native
peer of `zero_offload`.

The fp32 parameters, their gradients and AdamW's moments live in pinned host memory and the optimizer
steps on the CPU; each transformer block's parameters are copied to the GPU in bf16 just before it runs
and dropped after (the next block's copy overlaps the current one's compute). GPU memory holds the
activations and about two blocks of 16-bit weights. Gradients are reduced in fp32. Computing in the
16-bit parameter dtype (no autocast) changes the math like DeepSpeed's bf16 mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from harness.core.checks import Check
from harness.core.footprint import Bytes, HostStep, ParamShape, StateFootprint
from harness.model import param_groups
from strategies.base import Batch, Executor, StepResult, Strategy, StrategyContext
from strategies.single_rank import single_rank_environment
from strategies.step_helpers import evaluating, host_optimizer_step

STATE_FILE = "strategy_state.pt"


class Fsdp2OffloadExecutor(Executor):
    name = "fsdp2_offload"
    description = "FSDP2 on one rank with CPUOffloadPolicy: fp32 state and the AdamW step on the host"
    experimental = True  # runs on the CPU (gloo, nothing pinned); its CUDA path awaits a GPU run
    supports_compile = False  # not verified with the offload policy's hooks
    optimizer_state_device = "cpu"
    # AdamW steps the fp32 parameters on the host; each forward and backward copy a block's 16-bit weights
    # to the GPU ahead of its use, and the fp32 gradients come back as backward makes them (overlapped).
    host_step = HostStep(
        optimizer="torch AdamW (foreach, CPU)", exposed_bytes_per_param=0, overlapped_bytes_per_param=8
    )

    @classmethod
    def host_step_benchmark(cls, params: list[torch.Tensor]) -> Callable[[], None]:
        return torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95)).step

    host_overhead_gib = 1.9
    composes_with = frozenset({"act_ckpt", "sel_ckpt"})
    refuses: ClassVar[dict[str, str]] = {
        "act_offload": "its parameters already come from the host; offloading activations too is not verified"
    }
    changes_math = "the forward and backward compute in the 16-bit parameter dtype (no autocast)"
    changes_math_in = frozenset({"bf16", "fp16"})

    @classmethod
    def doctor(cls, cuda: bool) -> list[Check]:
        import torch.distributed as dist

        backend = "nccl" if cuda else "gloo"
        ok = dist.is_available() and (dist.is_nccl_available() if cuda else dist.is_gloo_available())
        return [Check(f"torch.distributed ({backend})", ok, "available" if ok else "missing from this torch")]

    @classmethod
    def numerics(cls, precision: str) -> str:
        return "fp32" if precision == "fp32" else "pure16"

    @classmethod
    def state_footprint(cls, params: Sequence[ParamShape], precision: str) -> StateFootprint:
        n = sum(p.numel for p in params)
        width = 4 if precision == "fp32" else 2
        blocks = [p for p in params if p.name.startswith("blocks.")]
        per_block = sum(p.numel for p in blocks) / max(1, len({p.name.split(".")[1] for p in blocks}))
        root = n - sum(p.numel for p in blocks)
        # Held for the run, on the host: the fp32 parameters (they are the optimizer's masters), their
        # gradients, AdamW's moments and step counters. Transient on the GPU: the root's (embeddings,
        # final norm) and two blocks' unsharded compute copies, and their gradients before offload.
        return StateFootprint(
            weights=Bytes(host=4 * n),
            gradients=Bytes(host=4 * n),
            optimizer_state=Bytes(host=8 * n + 4 * len(params)),
            workspace=Bytes(gpu=(width + 4) * (root + 2 * per_block)),
        )

    def setup(self, model: nn.Module, ctx: StrategyContext) -> None:
        import torch.distributed as dist
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

        if ctx.precision == "fp16":
            from harness.core.errors import UserError

            raise UserError("fsdp2_offload runs in bf16 or fp32 here (fp16 needs a sharded loss scaler)")
        single_rank_environment(ctx.device)
        if not dist.is_initialized():
            dist.init_process_group("cuda:nccl,cpu:gloo" if ctx.device.type == "cuda" else "gloo")
        self.ctx = ctx
        dtype = torch.float32 if ctx.precision == "fp32" else torch.bfloat16
        policy = {
            "mp_policy": MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32),
            "offload_policy": CPUOffloadPolicy(pin_memory=ctx.device.type == "cuda"),
        }
        model.to(ctx.device)
        for block in model.blocks:
            fully_shard(block, **policy)
        self.model = self.forward = fully_shard(model, **policy)
        s = ctx.optimizer
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, s.weight_decay), lr=0.0, betas=s.betas, eps=s.eps
        )

    def train_step(self, micro_batches: Sequence[Batch], lr: float) -> StepResult:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = torch.zeros((), device=self.ctx.device)
        for x, y in micro_batches:
            loss = self.model(x, y)
            (loss / len(micro_batches)).backward()
            total += loss.detach()
        clip = self.ctx.optimizer.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        with host_optimizer_step():
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(total / len(micro_batches), _local(grad_norm))

    @torch.no_grad()
    def eval_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with evaluating(self.model):
            return self.model(x, y).float()

    def optimizer_tensors(self) -> list[torch.Tensor]:
        return [_local(t) for s in self.optimizer.state.values() for t in s.values() if torch.is_tensor(t)]

    def reset_optimizer_state(self) -> None:
        self.optimizer.state.clear()

    def save(self, directory: Path) -> None:
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_state, optim_state = get_state_dict(self.model, self.optimizer)
        torch.save({"model": model_state, "optimizer": optim_state}, directory / STATE_FILE)

    def load(self, directory: Path) -> None:
        from torch.distributed.checkpoint.state_dict import set_state_dict

        state = torch.load(directory / STATE_FILE, weights_only=False)  # DTensors: written by save above
        set_state_dict(
            self.model, self.optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
        )

    @classmethod
    def contract_checks(cls, strategy: Strategy, model: nn.Module) -> None:
        weight = strategy.executor.model.blocks[0].mlp.fc.weight
        assert _local(weight).device.type == "cpu" and _local(weight).dtype == torch.float32
        assert type(weight).__name__ == "DTensor"  # sharded by fully_shard, on a mesh of one rank

    def teardown(self) -> None:
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            optimizer.state.clear()
        self.optimizer = self.model = self.forward = None


def _local(t):
    """A DTensor's local shard (the whole tensor on one rank); other values as they are."""
    return t.to_local() if hasattr(t, "to_local") else t
