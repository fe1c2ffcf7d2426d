"""The fixed model: a GPT-2-style pre-LN decoder with learned positions and tied embeddings.

Every strategy trains exactly this module; strategies may wrap it (checkpointing, DeepSpeed engine)
but never change its math.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from harness.core.footprint import ActivationFootprint, ParamShape
from harness.core.presets import ModelConfig


@runtime_checkable
class Transformer(Protocol):
    """What model transforms may rely on: a list of residual blocks, each mapping (B, T, d) to (B, T, d),
    applied in order. Checkpointing and activation offload wrap these blocks."""

    blocks: nn.ModuleList


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        heads = (batch, seq, self.n_head, width // self.n_head)
        q, k, v = (t.view(heads).transpose(1, 2) for t in (q, k, v))
        # SDPA picks flash / memory-efficient kernels where the device has them.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).contiguous().view(batch, seq, width))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class LogitsLoss(nn.Module):
    """The loss head: logits from the tied output matrix, then cross-entropy in fp32 whatever the compute
    precision, so strategies agree on it. A module of its own (no parameters, so no state_dict keys) that
    a transform may replace with a fused kernel of the same math."""

    def forward(self, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = F.linear(hidden, weight)
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        self.loss_head: nn.Module = LogitsLoss()
        self._init_weights()

    def _init_weights(self) -> None:
        # GPT-2 init: N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer).
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif ".ln_" in name or name.startswith("ln_f"):
                nn.init.ones_(p)
            elif name.endswith("proj.weight"):
                nn.init.normal_(p, std=residual_std)
            else:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy when targets are given, else the logits."""
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(positions)
        for block in self.blocks:
            x = block(x)
        hidden = self.ln_f(x)
        if targets is None:
            return self.lm_head(hidden)
        return self.loss_head(hidden, self.lm_head.weight, targets)


def param_count(cfg: ModelConfig) -> int:
    """Parameters of GPT(cfg), counted analytically (tied embedding counted once)."""
    d, v, t = cfg.d_model, cfg.vocab_size, cfg.seq_len
    per_block = 12 * d * d + 13 * d  # qkv 3d²+3d, proj d²+d, fc 4d²+4d, proj 4d²+d, two LayerNorms 4d
    return v * d + t * d + cfg.n_layer * per_block + 2 * d


def flops_per_token(cfg: ModelConfig) -> int:
    """Model FLOPs per trained token: 6N + 12·L·d·T (PaLM, appendix B).

    N excludes the position embedding (a lookup, not a matmul) and counts the tied token embedding once,
    as the output projection. Recomputation by activation checkpointing is NOT counted (MLPerf's MFU).
    """
    n_matmul = param_count(cfg) - cfg.seq_len * cfg.d_model
    return 6 * n_matmul + 12 * cfg.n_layer * cfg.d_model * cfg.seq_len


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """The recipe's AdamW groups: decay on matrices and embeddings, none on biases and norms."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def param_shapes(cfg: ModelConfig) -> list[ParamShape]:
    """GPT(cfg)'s parameter tensors in `model.parameters()` order, without building it (tied weight once)."""
    d = cfg.d_model
    shapes = [
        ParamShape("wte.weight", (cfg.vocab_size, d), True),
        ParamShape("wpe.weight", (cfg.seq_len, d), True),
    ]
    block = (
        ("ln_1.weight", (d,)), ("ln_1.bias", (d,)),
        ("attn.qkv.weight", (3 * d, d)), ("attn.qkv.bias", (3 * d,)),
        ("attn.proj.weight", (d, d)), ("attn.proj.bias", (d,)),
        ("ln_2.weight", (d,)), ("ln_2.bias", (d,)),
        ("mlp.fc.weight", (4 * d, d)), ("mlp.fc.bias", (4 * d,)),
        ("mlp.proj.weight", (d, 4 * d)), ("mlp.proj.bias", (d,)),
    )  # fmt: skip
    for i in range(cfg.n_layer):
        shapes += [ParamShape(f"blocks.{i}.{name}", shape) for name, shape in block]
    return [*shapes, ParamShape("ln_f.weight", (d,)), ParamShape("ln_f.bias", (d,))]


def activation_footprint(cfg: ModelConfig, numerics: str) -> ActivationFootprint:
    """Bytes GPT's forward saves for backward, per token, as measured with saved-tensor hooks (eager).

    Per block: the inputs of both LayerNorms and of the four matmuls, the qkv and MLP hidden outputs,
    attention's output and log-sum-exp (4 bytes per head) and the norms' statistics. fp32 saves 16·d
    floats; under autocast the norms' inputs stay fp32 (2·4d) and the rest is 16-bit (14·2d); pure 16-bit
    saves 16·2d. The head: the final norm's and the output matmul's inputs, the fp32 log-probabilities of
    the loss (4·V) and the token ids. Autocast also keeps the 16-bit copy of every matmul weight.
    """
    d, h, v = cfg.d_model, cfg.n_head, cfg.vocab_size
    block_weights = 12 * d * d + 9 * d  # the four matmuls' weights and biases
    if numerics == "fp32":
        layer, head, residual, copies = 64 * d + 4 * h + 16, 8 * d + 4 * v + 32, 4 * d, 0
    elif numerics == "autocast16":
        layer, head, residual, copies = 36 * d + 4 * h + 16, 6 * d + 4 * v + 24, 4 * d, 2
    elif numerics == "pure16":
        layer, head, residual, copies = 32 * d + 4 * h + 8, 4 * d + 4 * v + 28, 2 * d, 0
    else:
        raise ValueError(f"unknown numerics {numerics!r}")
    # qkv (3d), attention (d, and its log-sum-exp per head), the projections (d each), the MLP's fc (4d).
    matmul_outputs = 10 * d * (4 if numerics == "fp32" else 2) + 4 * h
    return ActivationFootprint(
        matmul_outputs_per_token=matmul_outputs,
        logprobs_per_token=4 * v,
        head_input_per_token=(4 if numerics == "fp32" else 2) * d,
        layer_per_token=layer,
        head_per_token=head,
        block_input_per_token=residual,
        layer_weight_copies=copies * block_weights,
        head_weight_copies=copies * v * d,
        # Not saved, but alive at the loss: the logits and their gradient in fp32 (an estimate; the
        # saved-tensor hooks cannot see it, the CUDA peak does).
        transient_per_token=8 * v,
    )
